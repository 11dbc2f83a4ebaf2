from celery import shared_task
from django.db import OperationalError

from apps.core.idempotency import idempotency_records_purge
from apps.core.partitions import partitions_ensure


@shared_task(
    name="core.idempotency_purge",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def idempotency_purge_task() -> int:
    return idempotency_records_purge()


@shared_task(
    name="core.partitions_ensure",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def partitions_ensure_task() -> list[str]:
    return partitions_ensure()
