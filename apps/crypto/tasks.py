from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.db import OperationalError

from apps.crypto.services import master_keys_epoch_advance


@shared_task(
    name="crypto.key_epoch",
    acks_late=True,
    # A rotation cut short by the time limit is audited as interrupted and resumed by
    # the retry; a database that went away is tried again the same way.
    autoretry_for=(OperationalError, SoftTimeLimitExceeded),
    retry_backoff=True,
    max_retries=20,
)
def master_keys_epoch_advance_task() -> dict:
    result = master_keys_epoch_advance()
    return {
        "rotated_into": result.rotation.to_version if result.rotation else None,
        "rewrapped": result.rotation.rewrapped if result.rotation else 0,
        "created": result.created,
        "missing_key": result.missing_key,
        "retired": [r.version for r in result.retirements if r.outcome == "destroyed"],
    }
