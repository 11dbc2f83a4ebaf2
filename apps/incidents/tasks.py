from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from apps.incidents.services import (
    notices_resume,
    notices_send_batch,
    notices_wake_countdown,
)


@shared_task(
    name="incidents.send_notices",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def notices_send_task(incident_id: str) -> int:
    """Send the notices due now, a batch at a time (ids only in the message).

    Without a broker this process loops until nothing is due: every attempt moves its
    notice on (sent, failed, or retrying later), so the loop ends. With a broker, a
    batch that made progress queues the next; one that found nothing due books one
    wake-up for the earliest retry instead of spinning. Retries left for later are also
    resumed by the beat job (`notices_send_due_task`) and by notifying again.
    """
    if settings.CELERY_TASK_ALWAYS_EAGER:  # no broker: this process sends them all
        total = 0
        while attempted := notices_send_batch(incident_id=incident_id):
            total += attempted
        return total
    attempted = notices_send_batch(incident_id=incident_id)
    if attempted:
        notices_send_task.delay(incident_id)
        return attempted
    countdown = notices_wake_countdown(incident_id=incident_id)
    if countdown is not None:
        notices_send_task.apply_async((incident_id,), countdown=countdown)
    return 0


@shared_task(name="incidents.send_due_notices", acks_late=True)
def notices_send_due_task() -> int:
    """Beat: resume sending for every incident with notices due now (retries whose
    time has come, or a send that stopped). Returns how many incidents."""
    incident_ids = notices_resume()
    for incident_id in incident_ids:
        notices_send_task.delay(str(incident_id))
    return len(incident_ids)
