from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from apps.inventory.services import change_notice_send_batch


@shared_task(
    name="inventory.send_change_notice",
    acks_late=True,
    # A mail server that drops the connection (smtplib's errors are OSErrors) is tried
    # again; the customer whose email failed is not recorded as told.
    autoretry_for=(OperationalError, OSError),
    retry_backoff=True,
    max_retries=5,
)
def change_notice_send_task(notice_id: int) -> int:
    """One batch of change-notice emails; queue the next while anyone is left."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        total = 0
        while sent := change_notice_send_batch(notice_id=notice_id):
            total += sent
        return total
    sent = change_notice_send_batch(notice_id=notice_id)
    if sent:
        change_notice_send_task.delay(notice_id)
    return sent
