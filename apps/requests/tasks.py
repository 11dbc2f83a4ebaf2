from celery import shared_task
from django.db import OperationalError

from apps.requests.services import request_process


@shared_task(
    name="requests.process",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def request_process_task(request_id: str) -> None:
    request_process(request_id=request_id)
