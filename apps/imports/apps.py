from django.apps import AppConfig

from apps.core.navigation import NavItem


class ImportsConfig(AppConfig):
    name = "apps.imports"
    label = "imports"
    verbose_name = "Import of existing customers"
    nav_items = (
        NavItem("Import", "imports:list", roles=("privacy_admin",), order=116),
    )
