"""Database helpers shared by the apps, and the one order in which locks are taken.

Lock order. A transaction that takes more than one lock takes them in this order, and
says so where it takes them:

1. an advisory lock that serialises one job for one subject (`advisory_xact_lock`,
   e.g. raising alerts for one rule and person; legal holds against erasures, see
   apps/retention/services.py), first;
2. the acting person's row, where a per-person limit is counted (reveals per hour,
   token issue), before anything else of theirs;
3. the records the service changes, parent before child: a data request, then its
   customer; a customer, then its data key, consent state, interactions and reveals; a
   user's row (`user_lock`), then their OIDC link (`OidcIdentity`), their devices,
   their API tokens and their permissions (apps/accounts: sign-in, the hourly OIDC
   check, sign out everywhere); an alert, then the staff member's row and their
   reveals; an interaction, then its reveals and its permission (a reveal being opened
   locks its interaction after the staff member's row, then reads, locking nothing,
   whether an alert holds their reveals suspended: a suspension marks its alert while
   holding that row, so the reveal sees it, or commits first and is ended by it). The
   one advisory lock taken here, not first: a case's grant lock (staff member and
   customer), after the interaction and its reveals, when closing it. Whoever else
   holds a grant lock waits on no row after it (`interaction_open` takes it after its
   insert, then only the audit chain, last), and a batch of closes takes its grant
   locks sorted by (staff member, customer), so two never cross;
4. the audit chain (`apps.audit.services.record`), last, held until commit. After it a
   transaction waits on no row lock: it locks only rows it holds already or creates,
   with one exception: step 5.

An API request sent with an `Idempotency-Key` (apps.core.idempotency) takes its
record's row before all of these and updates it after them:

0. the idempotency record: claimed (inserted, or taken over) in a statement of its
   own, committed before the handler's transaction begins, so the handler holds no
   lock on it;
5. the same record, updated as the handler's transaction's last statement (the
   answer kept with the change), after the audit chain. Its only other writers are
   single statements that take no other lock (a concurrent claim's takeover, a
   release, the purge): the wait is brief and joins no cycle.

The erasure journal (apps/customers/journal.py) is appended after an erasure commits,
in a transaction of its own that takes nothing else: the pending rows first (`FOR
UPDATE SKIP LOCKED`, by id: two appenders skip each other's rows, never wait on them),
then the journal file's exclusive `flock`, held for the write and its fsync only. An
erasure's own transaction only inserts its pending row.

Webhooks (apps/webhooks/services.py). Emitting inserts the outbox rows under the
customer's row (step 3; a request's completion locks it after the request's) and before
the audit chain, in every emitter. Each delivery's foreign-key check takes a `KEY SHARE`
lock on its endpoint at commit, after the audit chain: it never waits, since endpoint
changes lock the endpoint `FOR NO KEY UPDATE` (then its deliveries, then the audit
chain) and a deleted endpoint is only marked inactive; the purge deletes its row
`AMANAH_WEBHOOK_KEEP_DAYS` later, with no delivery left. The sender claims due
deliveries in a short transaction of their own (`FOR UPDATE SKIP LOCKED`, under a lease
id), renews one's lease in a single statement before sending it, and records the result
in another: the delivery's row (only while its lease id is still the claim's), then the
audit chain (a dead letter). The purge takes no audit lock: finished deliveries, then
events, then endpoints (each, then its data key, destroyed), in short transactions.

The customer import (apps/imports/services.py), one transaction per batch: its new
customers first, their data keys then the customers inserted in the order of their
email's blind index (a unique index: an insert waits on another transaction's
uncommitted row with the same email, so two imports insert in one order and never
wait on each other in a cycle); then its existing customers (step 3, in id order),
their data keys and consent state; the audit chain last. A batch undone by a deadlock
or a serialization failure anyway is written again, a bounded number of times. An
upload's run takes its job's session-level advisory lock (`imports.job:<id>`) before
anything else and holds it for the whole run.

Queueing an incident's breach notices (`notices_queue`, apps/incidents/services.py)
takes the incident's session-level advisory lock (`incidents.notices_queue:<id>`,
without waiting: a second run is refused) before anything else and holds it across
its batches, one transaction each: the incident's row (step 3), then the batch's
affected rows and its new notices, then the audit chain.

Retention's clock histograms (apps/retention/clocks.py): statement triggers append
insert-only delta rows and lock nothing, but one: a DELETE of consent events (a disposal
batch, after it locked the events; a customer's deletion, after the customer) locks
those consents' states `FOR SHARE` in the trigger, before counting them out. A consent
writer locks the customer, then updates the state, and never waits on event rows, so no
cycle: the state's update waits for the delete to commit, or the delete for the update.
The compaction job and the rebuild take the session-level advisory lock
`retention.clock_counts` (one at a time, without waiting) and then only the compacted
counts' rows, which nothing else writes.

A master-key rotation or retirement (apps/crypto/masterkeys.py) takes the master keys'
session-level advisory lock (`advisory_session_lock`) before anything else and holds it
across its short transactions: one such job at a time. Inside them it locks MasterKey
rows, then (rotation batches) data keys, skipping those another transaction holds; the
audit chain last. Making a data key only reads MasterKey.

The partitioned logs (apps/core/partitions.py), each change in a short transaction of
its own whose lock waits are bounded (`SET LOCAL lock_timeout`: a long reader makes it
give up and retry later rather than queue every writer behind it). A month made ahead:
the advisory lock `partitions.create:<table>` (two callers at once), then SHARE UPDATE
EXCLUSIVE on the log (ATTACH PARTITION of a table whose CHECK constraint proves its
range), ACCESS EXCLUSIVE on the new table and on the DEFAULT partition (its rows of that
month are moved out and back in through the log first), and SHARE ROW EXCLUSIVE on the
tables the log's foreign keys point at (ATTACH clones the keys onto the month; waited
for at most 0.5 s). A month dropped
by retention (apps/retention/services.py): the holds' advisory lock (shared), then the
partitions' advisory lock (`retention.partitions`), then SHARE on the month alone
(counted while writers of other months go on), then ACCESS EXCLUSIVE on the log and its
DEFAULT partition and SHARE ROW EXCLUSIVE on the tables its foreign keys point at
(DETACH PARTITION, then a rename to `<partition>_disposed`), then the disposal-log row
and the run's progress row; not the audit chain, whose event follows the commit in a
transaction of its own (a writer holding the chain may still have a log row to insert).
The month before the log is the reverse of a statement through the log that locks every
partition (a DELETE by id): the drop waits for the log at most 0.5 s, below
`deadlock_timeout`, and gives up first if anyone is queued on the month, so such a
statement is never a deadlock's victim. After the commit, in a transaction of its own
that takes nothing else: ACCESS EXCLUSIVE on the marked table and on the tables its
foreign keys point at (DROP TABLE, milliseconds, waiting at most 0.5 s; its files are
removed after the commit released the locks).

Rows are locked `FOR NO KEY UPDATE` (`select_for_update(no_key=True)`) unless they are
about to be deleted: the `KEY SHARE` lock that every foreign-key check of an insert
takes (an access-log row naming its customer, an audit event naming its actor) never
waits on it, so inserts cannot join a cycle through a row they only refer to. (Django
makes PostgreSQL's foreign keys deferred: the checks of a transaction's inserts run at
its commit, after the audit chain, and for that reason too must never wait. A
transaction held to a time, `transaction_time_bounded` (disposal batches), runs them
as its last statement before the commit instead, in the same place in this order.)
"""

import hashlib
import json
import math
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import Any

import psycopg
from django.core.exceptions import FieldDoesNotExist
from django.db import DatabaseError, connection
from django.db.models import Field, Func, IntegerField, Model


def declare_disposal() -> None:
    """Mark the current transaction as a retention disposal: append-only tables (the
    consent ledger) accept its DELETEs, and only its, until the transaction ends."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL amanah.disposal = 'on'")


def _lock_key(key: int | str) -> int:
    if isinstance(key, str):
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)
    return key


def advisory_xact_lock(key: int | str, *, shared: bool = False) -> None:
    """Wait for PostgreSQL's transaction-level advisory lock `key` (a number, or a
    text hashed to a 64-bit one, so that two subjects all but never share a lock); it
    is released when the transaction ends. `shared`: any number of holders at once,
    none while someone holds it exclusively. Elsewhere a no-op: SQLite serialises
    writers itself."""
    if connection.vendor != "postgresql":
        return
    key = _lock_key(key)
    with connection.cursor() as cursor:
        if shared:
            cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [key])
        else:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


@contextmanager
def advisory_session_lock(key: int | str) -> Iterator[bool]:
    """Try PostgreSQL's session-level advisory lock `key` without waiting: yields
    whether this connection got it, and releases it when the block ends. It outlives
    the block's transactions (a job of many short ones, run once at a time); a process
    that dies loses it with its connection. Elsewhere always True."""
    if connection.vendor != "postgresql":
        yield True
        return
    key = _lock_key(key)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        got = cursor.fetchone()[0]
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [key])


def advisory_session_lock_free(key: int | str) -> bool:
    """Whether no other session holds the session-level advisory lock `key` now, read
    from `pg_locks` without taking it (taking it, even for a moment, would make a
    `pg_try_advisory_lock` of its real holder fail). Elsewhere always True."""
    if connection.vendor != "postgresql":
        return True
    unsigned = _lock_key(key) & 0xFFFFFFFFFFFFFFFF
    with connection.cursor() as cursor:
        # A bigint key is (classid, objid) = (high, low 32 bits), objsubid 1.
        cursor.execute(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
            "AND granted AND objsubid = 1 AND classid = %s::bigint::oid "
            "AND objid = %s::bigint::oid AND pid <> pg_backend_pid() AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()))",
            [unsigned >> 32, unsigned & 0xFFFFFFFF],
        )
        return bool(cursor.fetchone()[0])


def transactions_before_now_wait(*, timeout: float, poll: float = 0.05) -> bool:
    """Wait until every other transaction of this database that began before now has
    ended, or `timeout` seconds: afterwards no one acts on what they read before a
    change this connection has committed. True if they all ended. PostgreSQL only
    (pg_stat_activity); elsewhere True at once."""
    if connection.vendor != "postgresql":
        return True
    sql = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND xact_start < %s"
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT clock_timestamp()")
        since = cursor.fetchone()[0]
        deadline = time.monotonic() + timeout
        while True:
            cursor.execute(sql, [since])
            if not cursor.fetchone()[0]:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)


def count_rows() -> Func:
    """`COUNT(*)` for `.annotate()` without grouping (a scalar subquery's value):
    counting rows, not a column, lets PostgreSQL count from an index alone (an
    index-only scan) where a column's count reads each matching row from the table
    (unless the index holds that column too)."""
    return Func(template="COUNT(*)", output_field=IntegerField())


class TransactionOverBudget(Exception):
    """A transaction bounded by `transaction_time_bounded` ran out of its time: the
    statement running then was cancelled (or, its time already up, the next one was
    not sent), and the transaction is rolled back."""


# A statement may outlast the bound by at most this (the server's timeout is set again
# once it is this stale).
_BOUND_SLACK = 0.05


@dataclass
class _Bound:
    deadline: float
    set_at: float | None = None  # when the server's statement_timeout was last set
    before: str | None = None  # statement_timeout before the bound first set it


# The bound of the transaction in progress, kept on the thread's own connection (the
# proxy `connection` hands attributes to it).
_BOUND_ATTR = "amanah_bound"
_IN_ERROR = psycopg.pq.TransactionStatus.INERROR
_SAVEPOINT_SQL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def _timeout_set(milliseconds: str) -> str:
    """Set the transaction's `statement_timeout` on a client cursor of its own (not
    the statement's: a server-side cursor would only DECLARE it, never run it);
    returns the value it replaced."""
    with connection.wrap_database_errors:
        row = connection.connection.execute(
            "SELECT current_setting('statement_timeout'), "
            "set_config('statement_timeout', %s, true)",
            [milliseconds],
        ).fetchone()
    return row[0]


def _bound_apply() -> None:
    """Before a statement of a bounded transaction: out of time, raise; else set the
    server's `statement_timeout` to the time left, unless it was set within the
    slack. Not while the transaction is in error (only a rollback to a savepoint
    can run then)."""
    bound: _Bound | None = getattr(connection, _BOUND_ATTR, None)
    if bound is None:
        return
    now = time.monotonic()
    left = bound.deadline - now
    if left <= 0:
        raise TransactionOverBudget("the transaction ran out of its time")
    if connection.connection.info.transaction_status == _IN_ERROR:
        return
    if bound.set_at is None or now - bound.set_at > _BOUND_SLACK:
        # At least 1 ms: 0 would mean no timeout at all.
        before = _timeout_set(str(max(1, math.ceil(left * 1e3))))
        if bound.before is None:
            bound.before = before
        bound.set_at = now


def _bounded_execute(
    execute: Any, sql: Any, params: Any, many: bool, context: Any
) -> Any:
    # Savepoints (Django's nested atomics) are left alone: quick, and a rollback to
    # one must run even out of time.
    text = str(sql)
    savepoint = text.startswith(_SAVEPOINT_SQL)
    if not savepoint:
        _bound_apply()
    try:
        return execute(sql, params, many, context)
    finally:
        if text.startswith("ROLLBACK TO SAVEPOINT"):
            # It undid any timeout set since the savepoint: set it again next time.
            getattr(connection, _BOUND_ATTR).set_at = None


@contextmanager
def transaction_time_bounded(seconds: float | None) -> Iterator[None]:
    """Hold the enclosing transaction to `seconds`: use it as the whole body of an
    outermost `transaction.atomic` block. Each statement runs with PostgreSQL's
    `statement_timeout` set to the time left (set again once it is 50 ms stale, so
    a statement may outlast the bound by that much; a server-side cursor's FETCHes
    each run under the timeout set when it was declared; Python's own time between
    statements is not cancelled, the next statement is refused), and the deferred
    constraint checks run on leaving the block (`SET CONSTRAINTS ALL IMMEDIATE`),
    under that timeout too (a COMMIT's deferred checks are not cancelled by it).
    Out of time, the running statement is cancelled and `TransactionOverBudget`
    raised: the transaction rolls back. A statement cancelled by hand
    (`pg_cancel_backend`) before the time is up is not an overrun: its error goes
    on as it is. On leaving the block within the time the transaction's
    `statement_timeout` is what it was before; its constraints stay immediate.

    No bound (nothing done) with `seconds` None or not above zero, elsewhere than
    PostgreSQL, and inside an outer transaction (a savepoint cannot bound the
    transaction around it)."""
    if (
        seconds is None
        or seconds <= 0
        or connection.vendor != "postgresql"
        or len(connection.atomic_blocks) != 1
    ):
        yield
        return
    bound = _Bound(deadline=time.monotonic() + seconds)
    setattr(connection, _BOUND_ATTR, bound)
    try:
        with connection.execute_wrapper(_bounded_execute):
            yield
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        if bound.before is not None:
            _timeout_set(bound.before)
    except DatabaseError as exc:
        # Cancelled (SQLSTATE 57014) when the time was up: the timeout's. (Not told by
        # the server's message, which is in its own language.)
        if (
            isinstance(exc.__cause__, psycopg.errors.QueryCanceled)
            and time.monotonic() >= bound.deadline - _BOUND_SLACK
        ):
            raise TransactionOverBudget(
                f"the transaction ran out of its {seconds} s"
            ) from exc
        raise
    finally:
        setattr(connection, _BOUND_ATTR, None)


@contextmanager
def _preparing(conn: psycopg.Connection) -> Iterator[None]:
    """psycopg prepares a statement asked to (`prepare=True`) only while its
    connection has a `prepare_threshold`, and while it has one it keeps the text of
    every other statement run on it (Django's included, their values written into
    it: a batch's thousands of ids or keys) to count them, the last hundred: megabytes
    a connection. Django leaves it None; one is set for such a statement alone
    (never reached: nothing else is prepared). psycopg forgets the statements it
    prepared on a rollback of the connection (Django's, psycopg's own method); a
    `DEALLOCATE ALL` or `DISCARD ALL` sent as SQL would leave it names the server no
    longer has: nothing here sends one."""
    before = conn.prepare_threshold
    conn.prepare_threshold = sys.maxsize
    try:
        yield
    finally:
        conn.prepare_threshold = before


class _LoggedCursor(psycopg.Cursor):
    """psycopg's server-side-binding cursor whose statements still reach Django's
    query log when Django keeps one (DEBUG, CaptureQueriesContext): SQL text only,
    the parameters travel apart and are never logged. Its errors are Django's."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            # Django's exceptions (IntegrityError, DataError, ...), as its own
            # cursor raises them.
            with connection.wrap_database_errors:
                _bound_apply()
                if not kwargs.get("prepare"):
                    return super().execute(query, params, **kwargs)
                with _preparing(self.connection):
                    return super().execute(query, params, **kwargs)
        finally:
            if connection.queries_logged:
                connection.queries_log.append(
                    {"sql": str(query), "time": f"{time.monotonic() - started:.3f}"}
                )


def server_cursor() -> Any:
    """On PostgreSQL a server-side-binding cursor on Django's connection (same
    transaction): many keys travel as one binary array instead of being quoted into
    the SQL text one by one in Python, and a statement can be prepared once per
    connection. Elsewhere Django's own cursor."""
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        return _LoggedCursor(connection.connection)
    return connection.cursor()


# Rows of statements run on `server_cursor`, read into model instances as a queryset
# reads them. The statements name their columns (never `*`): a prepared statement's
# result must keep its shape while a migration adds a column under running processes.


def model_column_sql(model: type[Model], alias: str) -> dict[str, str]:
    """Each concrete field's name of `model` to its column under `alias`
    (`alias."col"`), in field order: for an app naming its own table's columns in a
    statement written by hand."""
    return {f.name: f'{alias}."{f.column}"' for f in model._meta.concrete_fields}


def model_columns_sql(model: type[Model], alias: str) -> str:
    """`alias."col", ...` for every concrete column of `model`, in field order."""
    return ", ".join(model_column_sql(model, alias).values())


def model_source_sql(model: type[Model], alias: str) -> str:
    """The FROM item of `model`'s table under `alias`."""
    return f'"{model._meta.db_table}" {alias}'


@cache
def _converters(model: type[Model]) -> tuple[list[str], list[tuple[Any, list]]]:
    """The attribute names of `model`'s concrete fields, and each field with the
    converters a queryset applies to its column (the backend's, then the field's own):
    the same for every row, so worked out once per process."""
    fields = model._meta.concrete_fields
    return [f.attname for f in fields], [
        (
            f,
            connection.ops.get_db_converters(f.get_col(model._meta.db_table))
            + f.get_db_converters(connection),
        )
        for f in fields
    ]


def model_from_row(model: type[Model], values: Any) -> Any:
    """A `model` instance from its concrete columns' values (in field order),
    converted as a queryset converts them."""
    attnames, converters = _converters(model)
    converted = []
    for (field, field_converters), value in zip(converters, values, strict=True):
        for convert in field_converters:
            value = convert(value, field, connection)
        converted.append(value)
    return model.from_db(connection.alias, attnames, converted)


def bulk_insert(
    model: type[Model],
    *,
    rows: Sequence[Sequence[Any]],
    columns: Sequence[str],
    constants: Mapping[str, Any] | None = None,
) -> int:
    """Insert one `model` row per item of `rows` (values in the order of `columns`,
    field names or attnames), each also holding `constants` (the same for every row),
    in one statement; returns the number of rows.

    On PostgreSQL each column travels as one binary array (`unnest`), bound on the
    server: no quoting of the rows in Python, one round trip whatever their number,
    and no transaction of its own. Elsewhere Django's `bulk_create`. The one place
    that chooses between the two.
    """
    if not rows:
        return 0
    constants = dict(constants or {})
    meta = model._meta
    if connection.vendor != "postgresql":
        attnames = [_column(model, name).attname for name in columns]
        fixed = {
            _column(model, name).attname: value for name, value in constants.items()
        }
        model._default_manager.bulk_create(
            model(**fixed, **dict(zip(attnames, row, strict=True))) for row in rows
        )
        return len(rows)
    targets, selected, params = [], [], []
    for name, value in constants.items():
        field = _column(model, name)
        targets.append(f'"{field.column}"')
        selected.append(f"%b::{_array_base(field)}" + _cast_back(field))
        params.append(_db_value(field, value))
    by_column = list(zip(*rows, strict=True))
    aliases = []
    for index, name in enumerate(columns):
        field = _column(model, name)
        targets.append(f'"{field.column}"')
        aliases.append(f"%b::{_array_base(field)}[]")
        selected.append(f"t.c{index}" + _cast_back(field))
        params.append([_db_value(field, value) for value in by_column[index]])
    names = ", ".join(f"c{index}" for index in range(len(columns)))
    sql = (
        f'INSERT INTO "{meta.db_table}" ({", ".join(targets)}) '  # noqa: S608  # nosec B608
        f"SELECT {', '.join(selected)} FROM unnest({', '.join(aliases)}) AS t({names})"
    )
    with server_cursor() as cursor:
        cursor.execute(sql, params)
    return len(rows)


def _column(model: type[Model], name: str) -> Field:
    """`model`'s concrete field `name` (or attname): a reverse relation is none."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field):
        raise FieldDoesNotExist(f"{model.__name__}.{name} is not a column.")
    return field


def _array_base(field: Any) -> str:
    """The element type a column's values travel as: JSON as text (cast back after);
    text for `varchar(n)` and `char(n)` too, since an explicit cast to those cuts a
    value to length silently, where the insert's own assignment refuses one too
    long."""
    if field.get_internal_type() == "JSONField":
        return "text"
    db_type = field.db_type(connection)
    if db_type.startswith(("varchar(", "char(")):
        return "text"
    return db_type


def _cast_back(field: Any) -> str:
    return "::jsonb" if field.get_internal_type() == "JSONField" else ""


def _db_value(field: Any, value: Any) -> Any:
    if field.get_internal_type() == "JSONField":
        return None if value is None else json.dumps(value, cls=field.encoder)
    if isinstance(value, Model):
        return value.pk
    return value
