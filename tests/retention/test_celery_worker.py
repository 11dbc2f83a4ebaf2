"""The purge through a real Celery worker on the Redis broker, not eagerly."""

import time
import uuid
from importlib import import_module

import pytest
from django.apps import apps

from apps.customers.models import Customer
from apps.retention.models import DisposalLogEntry, RunStatus
from apps.retention.services import purge_fan_out
from apps.retention.tasks import purge_batch_task
from config.celery import app
from tests.redis import redis_answers
from tests.retention.factories import aged_customer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_worker(settings):
    """A Celery app of this test's own on the Redis broker, made current so the code's
    `.delay()` calls go through it (the shared app caches routes from earlier, eager
    tests), with a real worker thread consuming its own queue."""
    if not redis_answers():
        pytest.skip("no Redis on 127.0.0.1:6379")
    from celery import Celery
    from celery.contrib.testing.worker import start_worker

    queue = f"amanah-test-{uuid.uuid4().hex[:8]}"  # parallel runs never share work
    settings.CELERY_TASK_ALWAYS_EAGER = False
    broker_app = Celery("amanah-test", set_as_current=False)
    broker_app.config_from_object("django.conf:settings", namespace="CELERY")
    broker_app.conf.update(
        broker_url="redis://127.0.0.1:6379/15",
        task_always_eager=False,
        task_default_queue=queue,
        worker_hijack_root_logger=False,
    )
    broker_app.set_current()
    try:
        with start_worker(
            broker_app,
            pool="threads",
            concurrency=2,
            perform_ping_check=False,
            queues=[queue],
            loglevel="WARNING",
        ):
            yield broker_app
    finally:
        app.set_current()


def test_a_run_fans_its_batches_out_to_a_worker(redis_worker):
    import_module("apps.retention.migrations.0002_seed_policies").seed(apps, None)
    assert purge_batch_task.acks_late is True
    for _ in range(9):
        aged_customer(closed_days_ago=800)

    run = purge_fan_out(actor=None, batch_size=2)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status != RunStatus.RUNNING:
            break
        time.sleep(0.2)
    assert run.status == RunStatus.COMPLETED
    assert Customer.objects.filter(erased_at__isnull=False).count() == 9
    assert DisposalLogEntry.objects.count() == 9
    batches = sum(run.progress.values_list("batches", flat=True))
    assert batches >= 5  # 9 customers in batches of 2, taken by the worker
