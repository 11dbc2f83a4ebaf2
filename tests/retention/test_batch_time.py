"""Disposal batches sized by time: each aims at AMANAH_DISPOSAL_BATCH_SECONDS, so a
transaction holds its locks about that long whatever a row costs."""

import pytest

from apps.customers.models import Customer
from apps.retention import services, walk
from apps.retention.services import purge_run
from apps.retention.walk import BatchCursor
from tests.retention.factories import aged_customer

CLOSED = "closed-accounts"


def test_a_slow_batch_makes_the_next_one_smaller_and_a_fast_one_larger():
    cursor = BatchCursor("a", 40)

    def nxt(rows, seconds, most=5_000, taken=None):
        return walk.rows_next(
            cursor,
            rows=rows,
            taken=rows if taken is None else taken,
            seconds=seconds,
            most=most,
            aim=1.0,
        )

    assert nxt(2_000, 4.0).rows == 500  # four times the aim: a quarter of the rows
    assert nxt(1_000, 0.8).rows == 1_250
    assert nxt(1_000, 0.01).rows == 2_000  # at most doubled
    assert nxt(1_000, 0.0).rows == 2_000
    assert nxt(4_000, 0.1).rows == 5_000  # never past the run's batch size
    assert nxt(3, 1_000.0).rows == 1  # at least one row
    assert nxt(1_000, 0.5).after == "a"  # the walk's place is kept
    # A short batch (a sparse range) grows the next to at most twice what it took:
    # its time says nothing of what more rows cost. A slow short one still shrinks it.
    assert nxt(1_000, 0.01, taken=10).rows == 1_000
    assert nxt(1_000, 0.01, taken=700).rows == 1_400
    assert nxt(1_000, 2.0, taken=500).rows == 250
    assert (
        walk.rows_next(None, rows=10, taken=10, seconds=1.0, most=10, aim=1.0) is None
    )
    # A batch that took nothing keeps the size the chain had come to.
    assert walk.rows_keep(BatchCursor(sweep=True), BatchCursor("a", rows=37)).rows == 37
    assert walk.rows_keep(None, cursor) is None


def test_the_batch_size_travels_with_the_cursor_to_the_next_task():
    cursor = BatchCursor("a", 40, rows=750)
    assert BatchCursor(*cursor.to_args()) == cursor
    # A task queued before batches were sized by time carries four values.
    older = BatchCursor(*["a", 40, False, 0])
    assert older.batch_rows(2_000) == walk.FIRST_ROWS
    assert cursor.batch_rows(500) == 500


def _counted(monkeypatch) -> list[int]:
    counts: list[int] = []
    real = services.disposal_batch_execute

    def counted(**kwargs):
        count, following = real(**kwargs)
        counts.append(count)
        return count, following

    monkeypatch.setattr(services, "disposal_batch_execute", counted)
    return counts


@pytest.mark.django_db
def test_a_chain_starts_small_and_grows_while_its_batches_are_quick(
    monkeypatch, settings
):
    settings.AMANAH_DISPOSAL_BATCH_SECONDS = 60.0
    for _ in range(25):
        aged_customer(closed_days_ago=800)
    monkeypatch.setattr(walk, "FIRST_ROWS", 4)
    counts = _counted(monkeypatch)

    result = purge_run(actor=None, batch_size=10)

    assert result.disposed[CLOSED] == 25
    assert counts[:4] == [4, 8, 10, 3]  # then capped at the run's size


@pytest.mark.django_db
def test_batches_slower_than_the_aim_shrink_and_every_due_row_is_still_disposed(
    monkeypatch, settings
):
    # No batch can be as quick as a microsecond: each after the first takes one row.
    settings.AMANAH_DISPOSAL_BATCH_SECONDS = 1e-6
    due = [aged_customer(closed_days_ago=800) for _ in range(6)]
    aged_customer(closed_days_ago=10)
    counts = _counted(monkeypatch)

    result = purge_run(actor=None, batch_size=4)

    assert result.disposed[CLOSED] == len(due)
    assert Customer.objects.filter(erased_at__isnull=False).count() == len(due)
    assert counts[0] == 4
    assert [c for c in counts[1:] if c] == [1, 1]
