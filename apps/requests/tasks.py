from celery import shared_task
from django.db import OperationalError

from apps.requests.services import request_process, requests_process_stalled


@shared_task(
    name="requests.process",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def request_process_task(request_id: str, language: str = "") -> None:
    """Only the request's id (no personal data); its language is on the request.
    `language` is ignored: it lets tasks queued before that was so still run."""
    request_process(request_id=request_id)


@shared_task(name="requests.process_stalled")
def requests_process_stalled_task() -> int:
    """Beat: queue again the requests whose processing task was lost."""
    return requests_process_stalled()
