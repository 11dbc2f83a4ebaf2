from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

from apps.monitoring.rules import key_rotation_windows
from apps.retention.selectors import disposal_scheduled_at


@register()
def check_schedules(app_configs, **kwargs):
    """A malformed schedule setting is a start-up error: read at evaluation time, it
    would stop every rule after its own on every beat run."""
    errors = []
    for reader, ident in (
        (disposal_scheduled_at, "monitoring.E001"),
        (key_rotation_windows, "monitoring.E002"),
    ):
        try:
            reader()
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), id=ident))
    return errors
