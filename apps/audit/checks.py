import os
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def check_checkpoint_dir(app_configs, **kwargs):
    """Production needs a directory, outside the database, that the workers can
    write signed checkpoints to (beat writes one every hour)."""
    value = getattr(settings, "AMANAH_AUDIT_CHECKPOINT_DIR", "")
    if not value:
        return [
            Error(
                "AMANAH_AUDIT_CHECKPOINT_DIR is not set: no checkpoint of the audit "
                "chain is kept outside the database.",
                id="audit.E001",
            )
        ]
    path = Path(value)
    if not path.is_absolute():
        return [
            Error(
                f"AMANAH_AUDIT_CHECKPOINT_DIR ({value}) must be an absolute path: each "
                "process would resolve it from its own working directory.",
                id="audit.E002",
            )
        ]
    if not path.is_dir():
        return [
            Error(
                f"AMANAH_AUDIT_CHECKPOINT_DIR ({path}) is not a directory that exists.",
                id="audit.E003",
            )
        ]
    if not os.access(path, os.W_OK | os.X_OK):
        return [
            Error(
                f"AMANAH_AUDIT_CHECKPOINT_DIR ({path}) cannot be written by this "
                "process.",
                id="audit.E004",
            )
        ]
    return []
