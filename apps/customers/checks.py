import os
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def check_erasure_journal(app_configs, **kwargs):
    """Production needs a journal every process can append to: an erasure it cannot
    append waits in the database, and a restore from a backup would bring it back."""
    value = getattr(settings, "AMANAH_ERASURE_JOURNAL", "")
    if not value:
        return [
            Error(
                "AMANAH_ERASURE_JOURNAL is not set: erasures are not journaled, and a "
                "restore from a backup would bring erased customers back.",
                id="customers.E001",
            )
        ]
    path = Path(value)
    if not path.is_absolute():
        return [
            Error(
                f"AMANAH_ERASURE_JOURNAL ({value}) must be an absolute path: each "
                "process would resolve it from its own working directory.",
                id="customers.E002",
            )
        ]
    if not path.parent.is_dir():
        return [
            Error(
                f"AMANAH_ERASURE_JOURNAL's directory ({path.parent}) does not exist.",
                id="customers.E003",
            )
        ]
    writable = (
        os.access(path, os.W_OK)
        if path.exists()
        else os.access(path.parent, os.W_OK | os.X_OK)
    )
    if path.is_dir() or not writable:
        return [
            Error(
                f"AMANAH_ERASURE_JOURNAL ({path}) cannot be written by this process.",
                id="customers.E004",
            )
        ]
    return []
