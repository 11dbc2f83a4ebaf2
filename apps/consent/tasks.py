from celery import shared_task
from django.db import OperationalError

from apps.consent.models import PrivacyNotice
from apps.consent.services import notice_affected_customer_ids, notice_announce_batch

BATCH = 500


@shared_task(name="consent.notice_announce", acks_late=True)
def notice_announce_task(notice_id: int) -> int:
    """Fan the notice emails out in batches of customer ids (never addresses)."""
    ids = notice_affected_customer_ids(notice=PrivacyNotice.objects.get(pk=notice_id))
    for start in range(0, len(ids), BATCH):
        notice_announce_batch_task.delay(
            notice_id, [str(i) for i in ids[start : start + BATCH]]
        )
    return len(ids)


@shared_task(
    name="consent.notice_announce_batch",
    acks_late=True,
    # A mail server that drops the connection (smtplib's errors are OSErrors) is tried
    # again; the customers already told are recorded and skipped.
    autoretry_for=(OperationalError, OSError),
    retry_backoff=True,
    max_retries=5,
)
def notice_announce_batch_task(notice_id: int, customer_ids: list[str]) -> int:
    return notice_announce_batch(notice_id=notice_id, customer_ids=customer_ids)
