from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from apps.incidents.services import notices_send_batch


@shared_task(
    name="incidents.send_notices",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def notices_send_task(incident_id: str) -> int:
    """Send one batch and queue the next while any is left (ids only in the message)."""
    if settings.CELERY_TASK_ALWAYS_EAGER:  # no broker: this process sends them all
        total = 0
        while sent := notices_send_batch(incident_id=incident_id):
            total += sent
        return total
    sent = notices_send_batch(incident_id=incident_id)
    if sent:
        notices_send_task.delay(incident_id)
    return sent
