from celery import shared_task
from django.db import OperationalError

from apps.access.services import interactions_expire


@shared_task(
    name="access.expire_interactions",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def interactions_expire_task() -> int:
    return interactions_expire()
