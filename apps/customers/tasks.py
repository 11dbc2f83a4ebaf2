from celery import shared_task
from django.db import OperationalError

from apps.customers.journal import erasure_journal_flush


@shared_task(
    name="customers.erasure_journal_flush",
    acks_late=True,
    # A journal that cannot be written (its disk full or away, a permission) is tried
    # again; the erasures wait in the database meanwhile, and the beat runs this too.
    autoretry_for=(OSError, OperationalError),
    retry_backoff=True,
    max_retries=5,
)
def erasure_journal_flush_task() -> int:
    """Append the pending erasures to the erasure journal. No arguments: it takes
    whatever is pending."""
    return erasure_journal_flush()
