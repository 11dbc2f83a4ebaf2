"""A run's chains have one step (`disposal_chain_advance`), taken here or by a worker,
and one place (`purge_start`) chooses which."""

import logging

import pytest

from apps.customers.models import Customer
from apps.retention.models import DisposalRun, RetentionPolicy, RunStatus
from apps.retention.services import (
    disposal_run_finish,
    disposal_run_start,
    purge_fans_out,
    purge_start,
)
from apps.retention.tasks import purge_batch_task, purge_expired_task
from tests.retention.factories import aged_customer

pytestmark = pytest.mark.django_db

CLOSED = "closed-accounts"


def _vanished_run_id() -> int:
    """The id of a run that was started, then deleted (its batches still queued)."""
    run = disposal_run_start(actor=None, batch_size=10)
    run_id = run.pk
    run.delete()
    return run_id


def test_a_batch_of_a_run_that_no_longer_exists_is_logged_and_skipped(caplog):
    customer = aged_customer(closed_days_ago=800)
    run_id = _vanished_run_id()
    policy = RetentionPolicy.objects.get(code=CLOSED)
    with caplog.at_level(logging.WARNING, logger="apps.retention.services"):
        assert purge_batch_task(run_id, policy.pk) == 0
    [record] = [r for r in caplog.records if r.getMessage() == "retention.run_missing"]
    assert (record.run_id, record.policy_id) == (run_id, policy.pk)
    customer.refresh_from_db()
    assert not customer.is_erased
    assert not DisposalRun.objects.exists()


def test_a_failed_batch_of_a_run_that_no_longer_exists_closes_nothing():
    assert disposal_run_finish(run_id=_vanished_run_id(), error="RuntimeError") is None


def test_batches_go_to_the_workers_unless_tasks_run_eagerly_or_here(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    assert purge_fans_out() is True
    assert purge_fans_out(here=True) is False
    settings.CELERY_TASK_ALWAYS_EAGER = True
    assert purge_fans_out() is False


def test_the_nightly_job_runs_here_to_the_end_when_tasks_run_eagerly():
    customer = aged_customer(closed_days_ago=800)
    run = DisposalRun.objects.get(pk=purge_expired_task())
    assert run.status == RunStatus.COMPLETED
    assert Customer.objects.get(pk=customer.pk).is_erased


def test_a_fanned_out_run_queues_its_chains_once_committed(
    settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    customer = aged_customer(closed_days_ago=800)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        run = purge_start(actor=None, batch_size=10)
    assert run.status == RunStatus.RUNNING
    assert len(queued) == 2 * run.progress.count()  # two chains per policy
    customer.refresh_from_db()
    assert not customer.is_erased  # the workers dispose, not the caller
