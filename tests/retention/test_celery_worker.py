"""The purge through real Celery workers, on Redis and on RabbitMQ, not eagerly: the
batches fan out, a killed worker's batch reaches another worker, and purge_expired says
when no worker is there."""

import io
import os
import signal
import threading
import time
import uuid

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from kombu.utils.url import maybe_sanitize_url

from apps.customers.models import Customer
from apps.retention.models import (
    DisposalLogEntry,
    DisposalRun,
    RetentionPolicy,
    RunStatus,
)
from apps.retention.selectors import disposal_run_tally
from apps.retention.services import purge_dry_run, purge_fan_out
from apps.retention.tasks import purge_batch_task
from tests import brokers
from tests.brokers import (
    celery_app,
    rabbitmq_vhost,
    redelivery_conf,
    redis_url_or_skip,
    worker_processes,
)
from tests.retention.factories import (
    aged_customer,
    overlapping_customers,
    reseed_policies,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CLOSED = "closed-accounts"


@pytest.fixture(scope="module")
def rabbitmq_url():
    with rabbitmq_vhost() as url:
        yield url


# Every test runs on Redis; the two that matter most on a broker of another kind (the
# run on workers, a killed worker's batch handed on) run on RabbitMQ too.
@pytest.fixture(params=["redis", "rabbitmq"])
def broker_url(request) -> str:
    if request.param == "redis":
        return redis_url_or_skip()
    return request.getfixturevalue("rabbitmq_url")


@pytest.fixture
def queue() -> str:
    return f"amanah-test-{uuid.uuid4().hex[:8]}"  # parallel runs never share work


@pytest.fixture
def seeded_policies():
    reseed_policies()


@pytest.fixture
def thread_worker(broker_url, queue, settings, monkeypatch):
    """A real worker (two threads) in this process, consuming the test's queue."""
    with brokers.thread_worker(broker_url, queue, settings, monkeypatch) as app:
        yield app


def wait_for_run(run: DisposalRun, seconds: float = 60) -> DisposalRun:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status != RunStatus.RUNNING:
            break
        time.sleep(0.2)
    return run


def test_a_run_disposes_on_workers_what_the_dry_run_said(
    seeded_policies, support_agent, thread_worker
):
    """Two chains of batches per policy, all policies at once, on a real worker: per
    policy and in distinct customers, what the dry run said, each customer once."""
    assert purge_batch_task.acks_late is True
    overlapping_customers(support_agent)
    forecast = purge_dry_run()

    run = wait_for_run(purge_fan_out(actor=None, batch_size=2))

    assert run.status == RunStatus.COMPLETED
    tally = disposal_run_tally(run)
    assert [
        (line.policy.code, line.rows, line.customers) for line in tally.policies
    ] == [(line.policy.code, line.rows, line.customers) for line in forecast.policies]
    assert tally.customers == forecast.customers == 7
    assert tally.rows == forecast.rows == 11
    assert sum(run.progress.values_list("batches", flat=True)) >= 6  # batches of 2
    assert purge_dry_run().rows == 0


@pytest.mark.parametrize("broker_url", ["redis"], indirect=True)
def test_purge_expired_with_no_worker_says_so_at_once(
    broker_url, queue, settings, monkeypatch
):
    aged_customer(closed_days_ago=800)
    with celery_app(broker_url, queue, settings, monkeypatch):
        started = time.monotonic()
        with pytest.raises(CommandError) as refused:
            call_command("purge_expired", stdout=io.StringIO(), stderr=io.StringIO())
    message = str(refused.value)
    shown = maybe_sanitize_url(broker_url)  # amqp://guest:**@...
    assert message.startswith(f"No Celery worker answered on {shown}; ")
    assert message.endswith(
        "; start one with `make worker`, or run the disposal in this process with "
        "--here."
    )
    assert "\n" not in message
    assert ":guest@" not in message  # the broker's password stays out of it
    assert time.monotonic() - started < 10
    assert not DisposalRun.objects.exists()  # nothing queued for nobody


class TableLock:
    """Another connection holding a table in EXCLUSIVE mode: readers go on, a writer
    waits, as a worker's batch waits on its disposal log."""

    def __init__(self, table: str):
        db = connection.settings_dict
        self.table = table
        self.conn = psycopg.connect(
            dbname=db["NAME"],
            user=db["USER"],
            password=db.get("PASSWORD") or None,
            host=db["HOST"] or "127.0.0.1",
            port=db["PORT"] or 5432,
        )
        self.conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")

    def waiting_backend(self, seconds: float = 60) -> int:
        """The server process of the first connection waiting for the table."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            # pg_locks, not pg_stat_activity: that one is a snapshot per transaction.
            row = self.conn.execute(
                "SELECT pid FROM pg_locks "
                "WHERE NOT granted AND relation = %s::regclass",
                [self.table],
            ).fetchone()
            if row:
                return row[0]
            time.sleep(0.1)
        raise AssertionError(f"nothing waited for {self.table}")

    def release(self) -> None:
        self.conn.rollback()

    def wait_gone(self, pid: int, seconds: float = 30) -> None:
        """Until the server has ended `pid` (a killed client's backend ends once it
        has the lock and finds no one to answer)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]
            ).fetchone():
                return
            self.conn.rollback()
            time.sleep(0.1)
        raise AssertionError(f"backend {pid} is still there")

    def close(self) -> None:
        self.conn.close()


def test_a_killed_worker_s_batch_is_redelivered_to_another_worker(
    seeded_policies, broker_url, queue, settings, monkeypatch, tmp_path
):
    """A worker killed (SIGKILL) in the middle of a batch: the broker hands the batch's
    message to the next worker (Redis after the visibility timeout, here 3 s; RabbitMQ
    when the connection drops), which finishes the run, each customer once."""
    RetentionPolicy.objects.exclude(code=CLOSED).update(enabled=False)
    customers = [aged_customer(closed_days_ago=800) for _ in range(5)]
    conf = redelivery_conf(broker_url, queue, visibility=3)
    lock = TableLock(DisposalLogEntry._meta.db_table)
    with (
        celery_app(broker_url, queue, settings, monkeypatch, **conf),
        worker_processes(broker_url, queue, conf, tmp_path) as start,
    ):
        try:
            run = purge_fan_out(actor=None, batch_size=10, workers=1)  # one message
            first = start("first")
            backend = lock.waiting_backend()  # its batch, at the disposal log
            first.kill()
            lock.release()
            lock.wait_gone(backend)  # rolled back: the rows are due again
        finally:
            lock.close()
        assert Customer.objects.filter(erased_at__isnull=False).count() == 0
        second = start("second")
        run = wait_for_run(run, seconds=60)

    taken = first.received("retention.purge_batch")
    assert len(taken) == 1
    assert second.received("retention.purge_batch")[0] == taken[0]  # redelivered
    assert run.status == RunStatus.COMPLETED
    assert set(
        Customer.objects.filter(erased_at__isnull=False).values_list("pk", flat=True)
    ) == {c.pk for c in customers}
    refs = list(DisposalLogEntry.objects.values_list("subject_ref", flat=True))
    assert len(refs) == len(set(refs)) == len(customers)


@pytest.mark.parametrize("broker_url", ["redis"], indirect=True)
def test_a_killed_pool_process_s_batch_is_put_back_at_once(
    seeded_policies, broker_url, queue, settings, monkeypatch, tmp_path
):
    """`make worker` runs tasks in pool processes (prefork). One killed mid-batch (out
    of memory, SIGKILL) has its message put back at once (task_reject_on_worker_lost),
    not acknowledged as failed, and the worker's next pool process finishes the run."""
    RetentionPolicy.objects.exclude(code=CLOSED).update(enabled=False)
    customers = [aged_customer(closed_days_ago=800) for _ in range(5)]
    lock = TableLock(DisposalLogEntry._meta.db_table)
    with (
        celery_app(broker_url, queue, settings, monkeypatch),
        worker_processes(broker_url, queue, {}, tmp_path) as start,
    ):
        try:
            run = purge_fan_out(actor=None, batch_size=10, workers=1)  # one message
            worker = start("prefork", pool="prefork")
            backend = lock.waiting_backend()
            (pool_process,) = worker.pool_processes()
            os.kill(pool_process, signal.SIGKILL)
            lock.release()
            lock.wait_gone(backend)
        finally:
            lock.close()
        run = wait_for_run(run, seconds=60)

    received = worker.received("retention.purge_batch")
    assert received[:2] == [received[0]] * 2, received  # the killed one's, again
    assert run.status == RunStatus.COMPLETED
    assert Customer.objects.filter(erased_at__isnull=False).count() == len(customers)
    assert DisposalLogEntry.objects.count() == len(customers)


@pytest.mark.parametrize("broker_url", ["redis"], indirect=True)
def test_purge_expired_says_when_its_worker_is_gone_and_goes_on_with_the_next(
    seeded_policies, broker_url, queue, settings, monkeypatch, tmp_path
):
    """The only worker dies mid-run: the command says so instead of waiting without a
    word, and finishes when another worker takes the batches."""
    from apps.retention.management.commands.purge_expired import Command

    monkeypatch.setattr(Command, "stall_seconds", 1.0)
    monkeypatch.setattr(Command, "answer_seconds", 1.0)
    RetentionPolicy.objects.exclude(code=CLOSED).update(enabled=False)
    for _ in range(3):
        aged_customer(closed_days_ago=800)
    conf = redelivery_conf(broker_url, queue, visibility=3)
    out, err = io.StringIO(), io.StringIO()
    lock = TableLock(DisposalLogEntry._meta.db_table)
    with (
        celery_app(broker_url, queue, settings, monkeypatch, **conf),
        worker_processes(broker_url, queue, conf, tmp_path) as start,
    ):
        first = start("first")
        failures: list[BaseException] = []

        def kill_then_replace() -> None:
            try:
                backend = lock.waiting_backend()
                first.kill()
                deadline = time.monotonic() + 30
                while "no Celery worker answers" not in err.getvalue():
                    assert time.monotonic() < deadline, err.getvalue()
                    time.sleep(0.1)
                lock.release()
                lock.wait_gone(backend)
                start("second")
            except BaseException as exc:
                failures.append(exc)
                lock.release()

        helper = threading.Thread(target=kill_then_replace)
        helper.start()
        try:
            call_command("purge_expired", "--batch-size", "10", stdout=out, stderr=err)
        finally:
            helper.join()
            lock.close()
    assert failures == []
    assert "no progress for 1 s and no Celery worker answers on" in err.getvalue()
    assert "completed, 3 rows disposed (3 customers)." in out.getvalue()


@pytest.mark.parametrize("broker_url", ["redis"], indirect=True)
def test_purge_expired_stops_waiting_when_a_batch_fails_for_good(
    seeded_policies, thread_worker, monkeypatch
):
    """A batch that fails for good marks the run failed, so the command does not wait
    for a chain that ended; it says so and exits 1."""
    from apps.retention import services

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "disposal_batch_execute", broken)
    aged_customer(closed_days_ago=800)
    done, stuck = threading.Event(), threading.Event()

    def watchdog() -> None:
        """Without the failure mark the command would wait for ever: end it."""
        try:
            if not done.wait(60):
                stuck.set()
                DisposalRun.objects.update(status=RunStatus.FAILED, error="stuck")
        finally:
            connection.close()

    threading.Thread(target=watchdog).start()
    out = io.StringIO()
    try:
        with pytest.raises(CommandError) as failed:
            call_command("purge_expired", stdout=out, stderr=io.StringIO())
    finally:
        done.set()
    assert not stuck.is_set(), "purge_expired kept waiting for a chain that ended"
    run = DisposalRun.objects.get()
    assert str(failed.value) == (
        f"Run {run.pk} failed (RuntimeError); run purge_expired again to resume it."
    )
    assert f"Run {run.pk}: failed, 0 rows disposed (0 customers)." in out.getvalue()
    assert run.status == RunStatus.FAILED
