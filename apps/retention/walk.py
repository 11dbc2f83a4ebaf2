"""How a disposal worker walks a policy's rows: in primary-key order, a bounded key
range per batch, then one sweep for what the walk passed by.

A batch that asked for "the first N due rows by primary key" over the whole table
would look at everything still due each time, so a run would cost the square of its
size; a range keeps each batch's look proportional to the batch.

Batches are sized by time, not by count: each aims at
`settings.AMANAH_DISPOSAL_BATCH_SECONDS`, so a batch's transaction holds its locks about
that long whatever a row costs (a customer with years of history costs far more than one
access-log row). A chain's first batch takes `FIRST_ROWS`; each next one scales the
last one's size by how far its time was from the aim (`rows_next`): growing only from
what a batch took, to at most twice that, never past the run's batch size. A key
range that held fewer due rows than the batch takes is widened by the density it
showed (`next_cursor`), so that batches fill.

A batch's size cannot foresee a slow moment (a disk that stalls, a lock waited for),
so each transaction is also held to `settings.AMANAH_DISPOSAL_TRANSACTION_SECONDS`:
one that runs out of it is rolled back and the same range tried again with a quarter
of the rows (`rows_after_overrun`). After `OVERRUNS_MAX` batches in a row rolled back
(a lock waited for longer than all of them, or one row that cannot be disposed of
within the time) the next runs unbounded, so that disposal always goes on.
"""

from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from django.db import connection, models
from django.db.models import Max, Min, Q


@dataclass(frozen=True)
class BatchCursor:
    """Where one worker's walk through a policy's rows stands, in primary-key order.

    A batch looks only at the `span` rows of the table after `after` (a bounded index
    range), so its cost does not grow with what is still due. At the end of the table
    the worker sweeps once more from the start with no bound (`sweep`): that finds
    whatever the walk passed by (rows another worker held and then let go, rows that
    fell due meanwhile). A sweep that finds nothing finishes the policy, unless due
    rows are still held by other transactions (`sweep_again`).
    """

    after: str | None = None
    span: int = 0  # rows of the table per batch; 0: SPAN_START times the batch size
    sweep: bool = False
    waits: int = 0  # sweeps that found due rows only other transactions held
    rows: int = 0  # rows the batch takes at most; 0: FIRST_ROWS (or the run's size)
    overruns: int = 0  # batches in a row rolled back for running out of time

    def to_args(self) -> list:
        """JSON-safe, for the next Celery task: an id and numbers, no PII. Without
        `overruns` when there are none: a worker not yet updated to know it still
        takes the task (a rolling deploy). One with them fails on such a worker
        (six arguments), and the run with it: the next `purge_expired` resumes it."""
        args = [self.after, self.span, self.sweep, self.waits, self.rows]
        return [*args, self.overruns] if self.overruns else args

    def batch_rows(self, most: int) -> int:
        """How many rows this batch takes: its size, within the run's `most`."""
        return min(self.rows or FIRST_ROWS, most)


SPAN_START, SPAN_MAX = 4, 256  # times the batch size
FIRST_ROWS = 200
# Batches rolled back in a row before one runs unbounded. A chain's first batch
# (FIRST_ROWS) is down to one row after four, the default largest (2,000) after five,
# the bench's 5,000 after six.
OVERRUNS_MAX = 8
# A sweep that finds nothing it can lock while rows are still due (another worker's
# batch holds them, or a killed worker's connection that the server has not closed
# yet) looks again after SWEEP_PAUSE seconds, up to SWEEP_WAITS times, before leaving
# them to the next run. Finishing at once would close the run before that batch
# commits (its rows missing from the run's totals), or without the killed one's rows.
SWEEP_WAITS, SWEEP_PAUSE = 10, 1.0


def batch_range(model, cursor: BatchCursor, span: int) -> tuple[Q, Any]:
    """The filter for the cursor's next range of about `span` rows of `model`, and the
    range's last key (None: the range runs to the end of the table)."""
    if cursor.sweep:
        return Q(), None
    after = Q(pk__gt=cursor.after) if cursor.after is not None else Q()
    upper = _range_end(model, cursor.after, span)
    return (after & Q(pk__lte=upper) if upper is not None else after), upper


def _range_end(model, after: str | None, span: int) -> Any:
    """The key about `span` rows after `after`, by arithmetic where the keys allow it
    (random UUIDs spread evenly over their space; integer keys count up), else by
    walking the primary-key index. None past the last row. A range that holds more or
    fewer rows than meant is fine: the batch's LIMIT caps it, the cursor widens it."""
    pk = model._meta.pk
    if isinstance(pk, models.UUIDField):
        rows = max(_estimated_rows(model), span)
        step = -(-UUID_SPACE // rows)  # rounded up: a span of every row reaches the end
        end = (UUID(after).int if after else 0) + span * step
        return UUID(int=end) if end < UUID_SPACE else None
    if isinstance(pk, models.IntegerField):  # AutoField and BigAutoField included
        table = model._base_manager
        high = table.aggregate(high=Max("pk"))["high"]
        if high is None:
            return None
        start = int(after) if after else table.aggregate(low=Min("pk"))["low"] - 1
        return start + span if start + span < high else None
    return (
        model._base_manager.filter(**({"pk__gt": after} if after else {}))
        .order_by("pk")
        .values_list("pk", flat=True)[span - 1 : span]
        .first()
    )


UUID_SPACE = 1 << 128


def _estimated_rows(model) -> int:
    """PostgreSQL's row estimate for the table (kept by ANALYZE and autovacuum); 0
    when it has none (never analysed), and elsewhere."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
            [model._meta.db_table],
        )
        row = cursor.fetchone()
    return max(row[0], 0) if row else 0


def next_cursor(
    cursor: BatchCursor, *, span: int, taken: list, upper: Any, batch_size: int
) -> BatchCursor | None:
    """Where the walk goes on from; None when the policy is finished."""
    if cursor.sweep:
        return BatchCursor(sweep=True) if taken else None
    if len(taken) == batch_size:  # the range held more: go on from the last one
        return BatchCursor(str(taken[-1]), span)
    if upper is None:  # end of the table: sweep for what the walk passed by
        return BatchCursor(sweep=True)
    # A sparse range: look further ahead next time, as far as this range's density
    # says twice the batch needs (room for the batch to grow: a range holding more
    # than the batch takes costs nothing, the LIMIT stops the scan); doubled when it
    # held none.
    wider = -(-span * 2 * batch_size // len(taken)) if taken else span * 2
    return BatchCursor(str(upper), min(max(wider, span), SPAN_MAX * batch_size))


def sweep_again(cursor: BatchCursor) -> BatchCursor | None:
    """After a sweep that found due rows only other transactions hold: the same sweep
    after a pause, or None once it has waited SWEEP_WAITS times."""
    if cursor.waits >= SWEEP_WAITS:
        return None
    return BatchCursor(sweep=True, waits=cursor.waits + 1)


def rows_next(
    cursor: BatchCursor | None,
    *,
    rows: int,
    taken: int,
    seconds: float,
    most: int,
    aim: float,
) -> BatchCursor | None:
    """The next cursor with its batch sized by the last batch's time: the rows it
    `taken` in `seconds` scaled to `aim`; it grows to at most twice what was taken
    (at most `most`): a short batch (a sparse range) says nothing of what more rows
    would cost, so a quick one with few rows does not make the next large; at least
    1."""
    if cursor is None:
        return None
    scaled = 2 * rows if seconds <= 0 else int(max(taken, 1) * aim / seconds)
    ceiling = min(most, max(rows, 2 * taken))
    return replace(cursor, rows=max(1, min(ceiling, scaled)))


def rows_keep(following: BatchCursor | None, cursor: BatchCursor) -> BatchCursor | None:
    """`following` with `cursor`'s batch size: after a batch that took nothing."""
    return replace(following, rows=cursor.rows) if following is not None else None


def rows_after_overrun(cursor: BatchCursor, *, rows: int) -> BatchCursor:
    """The same batch again with a quarter of its `rows` (at least one), after it ran
    out of its time and was rolled back."""
    return replace(cursor, rows=max(1, rows // 4), overruns=cursor.overruns + 1)


def time_bound(cursor: BatchCursor, seconds: float) -> float | None:
    """The time the cursor's batch is held to: `seconds`, or None (unbounded) after
    `OVERRUNS_MAX` overruns in a row, or when `seconds` is not above zero (off)."""
    return seconds if seconds > 0 and cursor.overruns < OVERRUNS_MAX else None
