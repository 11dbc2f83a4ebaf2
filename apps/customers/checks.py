from django.conf import settings
from django.core.checks import Tags, register

from apps.core.checks import writable_path_check


@register(Tags.security, deploy=True)
def check_erasure_journal(app_configs, **kwargs):
    """Production needs a journal every process can append to: an erasure it cannot
    append waits in the database, and a restore from a backup would bring it back."""
    return writable_path_check(
        setting="AMANAH_ERASURE_JOURNAL",
        value=getattr(settings, "AMANAH_ERASURE_JOURNAL", ""),
        app="customers",
        kind="file",
        unset="erasures are not journaled, and a restore from a backup would bring "
        "erased customers back.",
    )
