from celery import Task, shared_task
from django.conf import settings
from django.db import OperationalError

from apps.retention import walk
from apps.retention.models import DisposalRun
from apps.retention.services import (
    disposal_batch_execute,
    disposal_policy_finished,
    disposal_run_finish,
    purge_fan_out,
    purge_run,
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
    """One batch; queue the next while the walk goes on, else close the run if done.
    `cursor`: where the previous batch left off (`BatchCursor.to_args`)."""
    run = DisposalRun.objects.get(pk=run_id)
    count, following = disposal_batch_execute(
        run_id=run_id,
        policy_id=policy_id,
        batch_size=run.batch_size,
        cursor=BatchCursor(*cursor) if cursor else None,
    )
    if following is not None:
        purge_batch_task.apply_async(
            (run_id, policy_id, following.to_args()),
            countdown=walk.SWEEP_PAUSE if following.waits else None,
        )
    else:
        disposal_policy_finished(run_id=run_id, policy_id=policy_id)
        disposal_run_finish(run_id=run_id)
    return count


@shared_task(name="retention.purge_expired")
def purge_expired_task() -> int:
    """The nightly run (beat): fans its batches out to the workers."""
    batch_size = settings.AMANAH_DISPOSAL_BATCH_SIZE
    if settings.CELERY_TASK_ALWAYS_EAGER:  # no broker: one process does it all
        return purge_run(actor=None, batch_size=batch_size).run.pk
    return purge_fan_out(actor=None, batch_size=batch_size).pk
