from django.conf import settings
from django.core.checks import Tags, register

from apps.core.checks import writable_path_check


@register(Tags.security, deploy=True)
def check_checkpoint_dir(app_configs, **kwargs):
    """Production needs a directory, outside the database, that the workers can
    write signed checkpoints to (beat writes one every hour)."""
    return writable_path_check(
        setting="AMANAH_AUDIT_CHECKPOINT_DIR",
        value=getattr(settings, "AMANAH_AUDIT_CHECKPOINT_DIR", ""),
        app="audit",
        kind="dir",
        unset="no checkpoint of the audit chain is kept outside the database.",
    )
