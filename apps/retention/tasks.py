from celery import Task, shared_task
from django.conf import settings
from django.db import OperationalError

from apps.retention import walk
from apps.retention.services import (
    disposal_chain_advance,
    disposal_run_finish,
    purge_start,
    retention_counts_compact,
)
from apps.retention.walk import BatchCursor


class PurgeBatch(Task):
    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        """A batch that failed for good (retries spent, the soft time limit) ends its
        chain: the run is marked failed, so whoever waits for it stops waiting, and
        the next purge_expired resumes it."""
        disposal_run_finish(run_id=args[0], error=type(exc).__name__)


@shared_task(
    base=PurgeBatch,
    name="retention.purge_batch",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def purge_batch_task(run_id: int, policy_id: int, cursor: list | None = None) -> int:
    """One step of a run's chain (`disposal_chain_advance`); queue the next while the
    chain goes on. `cursor`: where the previous batch left off
    (`BatchCursor.to_args`)."""
    count, following = disposal_chain_advance(
        run_id=run_id,
        policy_id=policy_id,
        cursor=BatchCursor(*cursor) if cursor else None,
    )
    if following is not None:
        args = (run_id, policy_id, following.to_args())
        if following.waits:
            purge_batch_task.apply_async(args, countdown=walk.SWEEP_PAUSE)
        else:
            purge_batch_task.apply_async(args)
    return count


@shared_task(name="retention.purge_expired")
def purge_expired_task() -> int:
    """The nightly run (beat): fans its batches out to the workers, or runs them here
    when tasks run eagerly (`purge_start`)."""
    return purge_start(actor=None, batch_size=settings.AMANAH_DISPOSAL_BATCH_SIZE).pk


@shared_task(name="retention.compact_clock_counts")
def compact_clock_counts_task() -> int | None:
    """Fold the clock histograms' pending deltas into their counts (beat, every
    minute): keeps what the report reads small."""
    return retention_counts_compact()
