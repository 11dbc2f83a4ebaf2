"""The disposal walk: bounded primary-key ranges, then one sweep for what it passed."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.access.models import AccessLogEntry
from apps.access.services import customers_read
from apps.consent.models import ConsentEvent
from apps.customers.models import Customer
from apps.retention import services, walk
from apps.retention.models import DisposalLogEntry, RetentionPolicy, RunStatus
from apps.retention.services import (
    disposal_batch_execute,
    disposal_run_start,
    purge_run,
)
from apps.retention.walk import BatchCursor
from tests.access.factories import assign
from tests.retention.factories import aged_customer

CLOSED = "closed-accounts"


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_walk_in_many_small_ranges_takes_every_due_row_once(monkeypatch):
    due = [aged_customer(closed_days_ago=800) for _ in range(25)]
    for _ in range(25):
        aged_customer(closed_days_ago=10)
    # As if the table were large: each range spans a sliver of the key space, so
    # most are sparse or empty and the cursor has to widen and go on.
    monkeypatch.setattr(walk, "SPAN_START", 1)
    monkeypatch.setattr(walk, "_estimated_rows", lambda model: 5_000)
    batches = []
    real = services.disposal_batch_execute

    def counted(**kwargs):
        result = real(**kwargs)
        batches.append(result)
        return result

    monkeypatch.setattr(services, "disposal_batch_execute", counted)

    result = purge_run(actor=None, batch_size=3)

    assert result.disposed[CLOSED] == len(due)
    assert Customer.objects.filter(erased_at__isnull=False).count() == len(due)
    refs = list(
        DisposalLogEntry.objects.filter(policy__code=CLOSED).values_list(
            "subject_ref", flat=True
        )
    )
    assert len(refs) == len(set(refs)) == len(due)
    assert len(batches) > 10  # many ranges, not one sweep
    assert batches[-1] == (0, None)  # a sweep that found nothing ended it


@pytest.mark.postgres
@pytest.mark.django_db
def test_integer_keys_with_gaps_are_walked_by_arithmetic(support_agent, monkeypatch):
    customer = aged_customer()
    assign(support_agent, customer)
    for _ in range(12):
        customers_read(actor=support_agent, customers=[customer])
    ids = list(AccessLogEntry.objects.order_by("pk").values_list("pk", flat=True))
    AccessLogEntry.objects.filter(pk__in=ids[2:5]).delete()  # a gap in the keys
    old = ids[:2] + ids[5:10]
    AccessLogEntry.objects.filter(pk__in=old).update(
        created_at=timezone.now() - timedelta(days=400)
    )
    monkeypatch.setattr(walk, "SPAN_START", 1)

    result = purge_run(actor=None, batch_size=2)

    assert result.disposed["access-log"] == len(old)
    assert set(AccessLogEntry.objects.values_list("pk", flat=True)) == set(ids[10:])


@pytest.mark.django_db
def test_a_chain_with_nothing_due_ends_without_walking_the_table(monkeypatch):
    """Its first step asks in the clock's order whether anything is due (an index on
    the clock answers from the due rows alone), rather than walking every key range
    to find nothing: the access log's 27,500,000 rows once its due month is dropped."""
    for _ in range(5):
        aged_customer(closed_days_ago=10)
    walked = []
    real = walk.batch_range
    monkeypatch.setattr(
        walk, "batch_range", lambda *a, **kw: walked.append(a) or real(*a, **kw)
    )
    result = purge_run(actor=None, batch_size=2)
    # Only consent events are walked: their clock (the consent's withdrawal) is not a
    # column of theirs, so no index answers the look.
    assert {model for model, *_ in walked} == {ConsentEvent}
    assert result.run.status == RunStatus.COMPLETED
    assert result.tally.rows == 0


def test_the_cursor_goes_on_from_the_last_row_of_a_full_batch():
    full = walk.next_cursor(
        BatchCursor("a", 40), span=40, taken=["b", "c"], upper="z", batch_size=2
    )
    sparse = walk.next_cursor(
        BatchCursor("a", 40), span=40, taken=[], upper="z", batch_size=2
    )
    at_end = walk.next_cursor(
        BatchCursor("a", 40), span=40, taken=["b"], upper=None, batch_size=2
    )
    thin = walk.next_cursor(
        BatchCursor("a", 40), span=40, taken=["b"], upper="z", batch_size=4
    )
    assert full == BatchCursor("c", 40)
    assert sparse == BatchCursor("z", 80)  # nothing in range: look further ahead
    # One due row in 40: the next range as wide as twice the batch needs.
    assert thin == BatchCursor("z", 320)
    capped = walk.next_cursor(
        BatchCursor("a", 400), span=400, taken=["b"], upper="z", batch_size=1_000
    )
    assert capped == BatchCursor("z", walk.SPAN_MAX * 1_000)
    assert at_end == BatchCursor(sweep=True)
    assert BatchCursor(*at_end.to_args()) == at_end  # what a Celery task carries


@pytest.mark.postgres  # row locks
@pytest.mark.django_db(transaction=True)
def test_a_row_another_worker_held_is_taken_by_the_sweep():
    from importlib import import_module

    from django.apps import apps

    import_module("apps.retention.migrations.0002_seed_policies").seed(apps, None)
    held, free = (aged_customer(closed_days_ago=800) for _ in range(2))
    policy = RetentionPolicy.objects.get(code=CLOSED)
    run = disposal_run_start(actor=None, batch_size=10)
    locked, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        try:
            with transaction.atomic():
                Customer.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    assert locked.wait(10)
    count, cursor = disposal_batch_execute(
        run_id=run.pk, policy_id=policy.pk, batch_size=10
    )
    # Passed the held row; the next batch as large (it was quick: `walk.rows_next`).
    assert (count, cursor) == (1, BatchCursor(sweep=True, rows=10))
    release.set()
    thread.join()

    count, cursor = disposal_batch_execute(
        run_id=run.pk, policy_id=policy.pk, batch_size=10, cursor=cursor
    )
    assert count == 1
    assert disposal_batch_execute(
        run_id=run.pk, policy_id=policy.pk, batch_size=10, cursor=cursor
    ) == (0, None)
    assert set(
        Customer.objects.filter(erased_at__isnull=False).values_list("pk", flat=True)
    ) == {held.pk, free.pk}


def hold_row_lock(pk) -> tuple[threading.Thread, threading.Event]:
    """Another transaction (a worker's batch still running) holding a customer's row
    until the returned event is set (at most a minute). Returns the thread, once the
    row is locked."""
    locked, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        try:
            with transaction.atomic():
                Customer.objects.select_for_update().get(pk=pk)
                locked.set()
                release.wait(60)
        finally:
            connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    assert locked.wait(10)
    return thread, release


@pytest.mark.postgres  # row locks
@pytest.mark.django_db(transaction=True)
def test_a_sweep_does_not_finish_while_another_transaction_holds_due_rows(
    monkeypatch,
):
    """Finishing there would close the run before the other worker's batch commits
    (its rows missing from the run's totals), or leave a killed worker's rows."""
    from importlib import import_module

    from django.apps import apps

    import_module("apps.retention.migrations.0002_seed_policies").seed(apps, None)
    monkeypatch.setattr(walk, "SWEEP_PAUSE", 0.1)
    held, _free = (aged_customer(closed_days_ago=800) for _ in range(2))
    policy = RetentionPolicy.objects.get(code=CLOSED)
    run = disposal_run_start(actor=None, batch_size=10)

    thread, release = hold_row_lock(held.pk)
    sweep = BatchCursor(sweep=True)
    assert disposal_batch_execute(
        run_id=run.pk, policy_id=policy.pk, batch_size=10, cursor=sweep
    ) == (1, BatchCursor(sweep=True, rows=10))  # the free one
    assert disposal_batch_execute(
        run_id=run.pk, policy_id=policy.pk, batch_size=10, cursor=sweep
    ) == (0, BatchCursor(sweep=True, waits=1))  # not (0, None): one is still due
    release.set()
    thread.join()

    result = purge_run(actor=None, batch_size=10)  # resumes the run
    assert result.run.status == RunStatus.COMPLETED
    assert result.disposed[CLOSED] == 2
    assert Customer.objects.filter(erased_at__isnull=True).count() == 0


@pytest.mark.postgres  # row locks
@pytest.mark.django_db(transaction=True)
def test_a_run_waits_for_a_held_row_then_leaves_it_to_the_next_run(monkeypatch):
    from importlib import import_module

    from django.apps import apps

    import_module("apps.retention.migrations.0002_seed_policies").seed(apps, None)
    monkeypatch.setattr(walk, "SWEEP_PAUSE", 0.05)
    monkeypatch.setattr(walk, "SWEEP_WAITS", 3)
    held = aged_customer(closed_days_ago=800)
    aged_customer(closed_days_ago=800)

    thread, release = hold_row_lock(held.pk)
    result = purge_run(actor=None, batch_size=10)  # waits 3 x 0.05 s at most
    release.set()
    thread.join()
    assert result.run.status == RunStatus.COMPLETED
    assert result.disposed[CLOSED] == 1
    assert purge_run(actor=None, batch_size=10).disposed[CLOSED] == 1


@pytest.mark.django_db
def test_a_sweep_reads_in_the_clock_order_so_an_index_on_the_clock_serves_it():
    """A sweep has no key range: in key order, a plan finds what is due by reading
    rows one by one, up to the whole table when nothing is left (50 s at 2,000,000
    customers, in one transaction). In the clock's order, the clock's index
    (customers_status_idx for closed accounts) reads only the due rows. Both the
    sweep and its check for rows held elsewhere keep that order."""
    from django.test.utils import CaptureQueriesContext

    policy = RetentionPolicy.objects.get(code=CLOSED)
    run = disposal_run_start(actor=None, batch_size=10)
    with CaptureQueriesContext(connection) as queries:
        assert disposal_batch_execute(
            run_id=run.pk,
            policy_id=policy.pk,
            batch_size=10,
            cursor=BatchCursor(sweep=True),
        ) == (0, None)
    reads = [
        q["sql"]
        for q in queries.captured_queries
        if '"customers_customer"."status"' in q["sql"]
    ]
    assert len(reads) == 2, reads  # the sweep, then the check for held rows
    for sql in reads:
        order = sql[sql.index("ORDER BY") :]
        assert order.startswith('ORDER BY "customers_customer"."closed_at" ASC'), sql


@pytest.mark.django_db
def test_the_walk_itself_still_reads_in_key_order():
    """The bounded ranges go by primary key (the cursor goes on from a key)."""
    from django.test.utils import CaptureQueriesContext

    aged_customer(closed_days_ago=800)
    policy = RetentionPolicy.objects.get(code=CLOSED)
    run = disposal_run_start(actor=None, batch_size=10)
    with CaptureQueriesContext(connection) as queries:
        disposal_batch_execute(run_id=run.pk, policy_id=policy.pk, batch_size=10)
    (read,) = [
        q["sql"]
        for q in queries.captured_queries
        if '"customers_customer"."status"' in q["sql"]
        and "ORDER BY" in q["sql"]
        and "FOR UPDATE" in q["sql"]  # not the chain's first look, by the clock
    ]
    # By the key, selected first (Django names it by position).
    assert read[read.index("ORDER BY") :].startswith("ORDER BY 1 ASC LIMIT"), read
