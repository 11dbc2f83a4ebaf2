from celery import shared_task
from django.db import OperationalError

from apps.webhooks.services import deliveries_purge, deliveries_send_all_due


@shared_task(
    name="webhooks.deliver",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def deliveries_send_all_due_task() -> int:
    """Send the due webhook deliveries (queued on each commit that wrote some, and by
    beat every 30 seconds for retries)."""
    return deliveries_send_all_due()


@shared_task(
    name="webhooks.purge",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def deliveries_purge_task() -> int:
    """Delete finished deliveries and events older than AMANAH_WEBHOOK_KEEP_DAYS, and
    endpoints deleted that long ago (beat, daily)."""
    result = deliveries_purge()
    return result.deliveries + result.events + result.endpoints
