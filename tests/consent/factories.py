from importlib import import_module

from django.apps import apps


def reseed_purposes() -> None:
    """Seed the purposes and notice v1 as migration 0003 does (after a flush)."""
    import_module("apps.consent.migrations.0003_seed_purposes").seed(apps, None)
