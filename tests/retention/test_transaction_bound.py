"""Disposal batches held to AMANAH_DISPOSAL_TRANSACTION_SECONDS: one that would take
longer (here: waiting for a legal hold being placed) is cancelled, rolled back and
tried again with fewer rows, and the run still disposes of everything due."""

import logging
import threading
import time

import pytest
from django.db import connection, transaction

from apps.core.db import advisory_xact_lock
from apps.customers.models import Customer, CustomerStatus
from apps.retention import services, walk
from apps.retention.services import purge_run
from apps.retention.walk import BatchCursor
from tests.retention.factories import aged_customer, reseed_policies

CLOSED = "closed-accounts"


def test_a_batch_over_its_time_is_tried_again_with_a_quarter_of_its_rows():
    cursor = BatchCursor("a", 40, rows=2_000)
    again = walk.rows_after_overrun(cursor, rows=2_000)
    assert (again.after, again.span, again.rows, again.overruns) == ("a", 40, 500, 1)
    assert walk.rows_after_overrun(BatchCursor(rows=3), rows=3).rows == 1
    assert walk.time_bound(again, 1.5) == 1.5
    spent = BatchCursor("a", 40, rows=1, overruns=walk.OVERRUNS_MAX)
    assert walk.time_bound(spent, 1.5) is None  # then unbounded: disposal goes on
    # The count travels to the next task (not when it is none: a worker not yet
    # updated takes five values), and a finished batch starts it again.
    assert BatchCursor(*again.to_args()) == again
    assert len(cursor.to_args()) == 5
    assert walk.time_bound(again, 0) is None  # 0: off
    following = walk.rows_next(
        walk.next_cursor(again, span=40, taken=["b"], upper="c", batch_size=500),
        rows=500,
        taken=1,
        seconds=0.1,
        most=2_000,
        aim=0.5,
    )
    assert following is not None
    assert following.overruns == 0


def _holds_lock_held(seconds: float, taken: threading.Event) -> threading.Thread:
    """Another connection holds the legal holds' lock for `seconds`, as a hold
    being placed does: disposal batches wait for it."""

    def hold() -> None:
        try:
            with transaction.atomic():
                advisory_xact_lock("retention.holds")
                taken.set()
                time.sleep(seconds)
        finally:
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    return thread


def _batch_times(
    monkeypatch, *, hold_seconds: float
) -> tuple[list[float], list[threading.Thread]]:
    """Each disposal batch's time; as the first begins, a hold being placed takes
    the holds' lock for `hold_seconds` (after the run's start, which waits for it)."""
    times: list[float] = []
    real = services.disposal_batch_execute
    holders: list[threading.Thread] = []

    def timed(**kwargs):
        if not holders:
            taken = threading.Event()
            holders.append(_holds_lock_held(hold_seconds, taken))
            assert taken.wait(timeout=10)
        started = time.monotonic()
        try:
            return real(**kwargs)
        finally:
            times.append(time.monotonic() - started)

    monkeypatch.setattr(services, "disposal_batch_execute", timed)
    return times, holders


def _run_beside_a_hold(monkeypatch, caplog, *, due: int, hold_seconds: float):
    """A disposal run of `due` overdue customers while a hold being placed takes
    the holds' lock for `hold_seconds` as its first batch begins. Returns the run's
    result, its batches' times and the rows of each batch over its time."""
    reseed_policies()
    for _ in range(due):
        aged_customer(closed_days_ago=800)
    times, holders = _batch_times(monkeypatch, hold_seconds=hold_seconds)
    with caplog.at_level(logging.WARNING, logger="apps.retention.services"):
        result = purge_run(actor=None, batch_size=1_000)
    holders[0].join(timeout=10)
    over = [
        r.rows for r in caplog.records if r.getMessage() == "retention.batch_over_time"
    ]
    return result, times, over


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_waiting_past_its_time_is_rolled_back_and_the_run_goes_on(
    monkeypatch, settings, caplog
):
    settings.AMANAH_DISPOSAL_TRANSACTION_SECONDS = 0.3
    # Longer than two tries, shorter than eight: every batch stays bounded.
    result, times, over = _run_beside_a_hold(
        monkeypatch, caplog, due=5, hold_seconds=2.0
    )

    # The first batches waited for the hold and gave up, each smaller than the last.
    assert over[:2] == [walk.FIRST_ROWS, walk.FIRST_ROWS // 4]
    assert max(times) < 1.5  # none waited out the hold's two seconds
    assert result.disposed[CLOSED] == 5
    assert not Customer.objects.filter(
        status=CustomerStatus.CLOSED, erased_at=None
    ).exists()
    progress = result.run.progress.get(policy__code=CLOSED)
    assert progress.disposed == 5  # a rolled-back batch counted nothing


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_after_too_many_overruns_in_a_row_a_batch_runs_unbounded(
    monkeypatch, settings, caplog
):
    settings.AMANAH_DISPOSAL_TRANSACTION_SECONDS = 0.2
    monkeypatch.setattr(walk, "OVERRUNS_MAX", 2)
    result, times, over = _run_beside_a_hold(
        monkeypatch, caplog, due=3, hold_seconds=1.5
    )

    # (A busy machine may add overruns of other policies' batches after these.)
    assert over[:2] == [walk.FIRST_ROWS, walk.FIRST_ROWS // 4]
    assert max(times) > 0.5  # the third waited for the hold, unbounded
    assert result.disposed[CLOSED] == 3
