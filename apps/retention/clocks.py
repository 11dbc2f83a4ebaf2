"""Clock histograms: how many rows of each retention scope have their clock (the time
a policy's period runs from) on each UTC day, kept by PostgreSQL as rows change, so
the retention report and the cockpit add up days instead of rescanning every row.

One histogram per key (`KEYS`): customers by each clock a policy may use and each
membership (not erased; closed; holding a category of personal data), the access log
by when it was written, closed interactions by when they closed, consent events by
their consent's withdrawal, and every consent event (the report's "held").

Writers. Statement-level triggers with transition tables (`REFERENCING NEW TABLE /
OLD TABLE`) on the counted tables append one `ClockDelta` row per key and day a
statement changed: +1 per row that enters a key's day, -1 per row that leaves it. They
only insert: no counter row is updated by a writer, so no writer waits on another
because of the counts. The one lock they take: deleting consent events locks their
consents' states `FOR SHARE` first (apps/core/db.py), since those events' day is the
state's and a concurrent change of the state must see the delete, or be seen by it.
Changes to one consent's events and state are otherwise serialised by the customer's
row, which every consent writer locks first.

Readers. A day's count is its `ClockCount` row plus its pending deltas, read in one
statement (one snapshot). The compaction job folds deltas into `ClockCount` in short
transactions, one job at a time (a session advisory lock), each moving exactly the
deltas it deleted. `clock_counts_rebuild` recounts from the rows in bounded
transactions (after bulk loads that bypass triggers: `session_replication_role =
replica`). PostgreSQL only: SQLite has no triggers here and counts directly.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.apps import apps
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q, QuerySet
from django.db.models.functions import TruncDate

from apps.consent.selectors import (
    consent_event_count_withdrawn_sql,
    consent_event_counts_withdrawn_by_day,
    consent_event_queryset,
    consent_withdrawals_span,
)
from apps.core.db import advisory_session_lock, count_rows
from apps.core.replica import read_connection
from apps.customers.models import CustomerStatus
from apps.customers.registry import DataCategory, fields_in_category
from apps.customers.selectors import CLOCK_FIELDS
from apps.retention.models import (
    ClockCount,
    ClockDelta,
    Covers,
    RetentionPolicy,
    Trigger,
)
from apps.retention.scopes import SCOPES

logger = logging.getLogger(__name__)

ONE_MICROSECOND = timedelta(microseconds=1)
ALL_CONSENT_EVENTS = "consent_events.all"
COMPACT_BATCH = 50_000
REBUILD_SPAN_DAYS = 31
_LOCK = "retention.clock_counts"


@dataclass(frozen=True)
class ClockKey:
    """One histogram: the rows of a policy kind (`covers`, `category`) by `trigger`,
    whose time is `field` on the rows (None: consent events, by their state's)."""

    name: str
    covers: str
    trigger: str
    category: str = ""
    field: str | None = None

    def policy(self) -> RetentionPolicy:
        """An unsaved policy of this key, for `SCOPES`."""
        return RetentionPolicy(
            covers=self.covers, trigger=self.trigger, category=self.category
        )


def _keys() -> tuple[ClockKey, ...]:
    keys = [
        ClockKey(
            "closed_accounts",
            Covers.CLOSED_ACCOUNTS,
            Trigger.CLOSED,
            field=CLOCK_FIELDS[Trigger.CLOSED],
        ),
        ClockKey(
            "inactive_customers",
            Covers.INACTIVE_CUSTOMERS,
            Trigger.LAST_ACTIVITY,
            field=CLOCK_FIELDS[Trigger.LAST_ACTIVITY],
        ),
    ]
    for category in DataCategory.values:
        for trigger in (Trigger.CREATED, Trigger.LAST_ACTIVITY):
            keys.append(
                ClockKey(
                    f"customer_pii.{category}.{trigger}",
                    Covers.CUSTOMER_PII,
                    trigger,
                    category,
                    CLOCK_FIELDS[trigger],
                )
            )
    keys += [
        ClockKey("access_log", Covers.ACCESS_LOG, Trigger.CREATED, field="created_at"),
        ClockKey(
            "interactions",
            Covers.INTERACTIONS,
            Trigger.INTERACTION_CLOSED,
            field="closed_at",
        ),
        ClockKey("consent_events", Covers.CONSENT_EVENTS, Trigger.CONSENT_WITHDRAWN),
    ]
    return tuple(keys)


KEYS: tuple[ClockKey, ...] = _keys()
KEYS_BY_NAME: dict[str, ClockKey] = {key.name: key for key in KEYS}


def clock_key(policy: RetentionPolicy) -> ClockKey | None:
    """The histogram that counts `policy`'s rows by its clock; None: none does (a
    combination `ALLOWED` refuses), so its rows are counted directly."""
    category = policy.category if policy.covers == Covers.CUSTOMER_PII else ""
    for key in KEYS:
        if (key.covers, key.trigger, key.category) == (
            policy.covers,
            policy.trigger,
            category,
        ):
            return key
    return None


def clock_counts_enabled() -> bool:
    """Whether the histograms are kept here (PostgreSQL's triggers)."""
    return connection.vendor == "postgresql"


def day_start(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(UTC).date(), time(), tzinfo=UTC)


# Counting from the rows ---------------------------------------------------------------


def _rows(
    key: ClockKey,
    since: datetime | None,
    before: datetime,
    customers: QuerySet | None,
) -> QuerySet:
    """The rows of `key` whose clock is in [`since`, `before`): a range on the
    clock's column (its index), the same instants as the scope's `clock` (at or
    before a time)."""
    scope = SCOPES[key.covers]
    rows = scope.rows(key.policy()).filter(**{f"{key.field}__lt": before})
    if since is not None:
        rows = rows.filter(**{f"{key.field}__gte": since})
    if customers is not None:
        rows = rows.filter(Q(**{f"{scope.customer_field}__in": customers}))
    return rows.order_by()


def rows_by_day(
    key: ClockKey,
    *,
    since: datetime | None,
    before: datetime,
    customers: QuerySet | None = None,
) -> dict[date, int]:
    """The rows of `key` whose clock is in [`since`, `before`) per UTC day, counted
    from the rows (no `since`: from the first); only those of `customers` (a
    queryset of customer ids) if given."""
    if key.field is None:
        return consent_event_counts_withdrawn_by_day(
            since=since, before=before, customers=customers
        )
    per_day = (
        _rows(key, since, before, customers)
        .annotate(clock_day=TruncDate(key.field, tzinfo=UTC))
        .values("clock_day")
        .annotate(n=Count("*"))  # from the clock's index alone (`count_rows`)
        .values_list("clock_day", "n")
    )
    return dict(per_day)


def count_sql(
    key: ClockKey,
    *,
    since: datetime | None,
    before: datetime,
    customers: QuerySet | None = None,
) -> tuple[str, list[Any]]:
    """A statement counting the rows of `key` whose clock is in [`since`,
    `before`) (of `customers` only, if given), as SQL text and parameters, for
    `counts_at_once`."""
    if key.field is None:
        return consent_event_count_withdrawn_sql(
            since=since, before=before, customers=customers
        )
    counted = _rows(key, since, before, customers).annotate(n=count_rows()).values("n")
    sql, params = counted.query.sql_with_params()
    return sql, list(params)


def counts_at_once(statements: list[tuple[str, list[Any]]]) -> list[int]:
    """The counts of `statements` (`count_sql`), in one statement: one round trip
    however many."""
    if not statements:
        return []
    sql = "SELECT " + ", ".join(f"({text})" for text, _ in statements)
    params = [value for _, values in statements for value in values]
    with read_connection().cursor() as cursor:
        cursor.execute(sql, params)
        return [int(n) for n in cursor.fetchone()]


def _consent_events_by_creation(since: datetime, before: datetime) -> dict[date, int]:
    per_day = (
        consent_event_queryset()
        .filter(created_at__gte=since, created_at__lt=before)
        .order_by()
        .annotate(clock_day=TruncDate("created_at", tzinfo=UTC))
        .values("clock_day")
        .annotate(n=Count("*"))  # from the clock's index alone (`count_rows`)
        .values_list("clock_day", "n")
    )
    return dict(per_day)


# Reading the histograms --------------------------------------------------------------


def histograms(names: Iterable[str]) -> dict[str, dict[date, int]]:
    """Per key, its count per day: the compacted counts plus the pending deltas, in
    one statement (one snapshot: a compaction moving rows between them is seen
    whole or not at all). Days counting zero are left out."""
    names = sorted(set(names))
    found: dict[str, dict[date, int]] = {name: {} for name in names}
    if not names:
        return found
    # Table names from model metadata; the keys are bound parameters.
    sql = (
        "SELECT scope, day, sum(rows) FROM ("  # noqa: S608  # nosec B608
        f"SELECT scope, day, rows FROM {ClockCount._meta.db_table} "
        "WHERE scope = ANY(%s) UNION ALL "
        f"SELECT scope, day, rows FROM {ClockDelta._meta.db_table} "
        "WHERE scope = ANY(%s)) c GROUP BY scope, day HAVING sum(rows) <> 0"
    )
    with read_connection().cursor() as cursor:
        cursor.execute(sql, [names, names])
        for scope, day, rows in cursor.fetchall():
            found[scope][day] = int(rows)
    return found


def count_before_day(histogram: dict[date, int], day: date) -> int:
    """The rows of a histogram whose clock is on a day before `day`."""
    return sum(rows for d, rows in histogram.items() if d < day)


# The compaction job -------------------------------------------------------------------


def clock_counts_compact(*, batch: int = COMPACT_BATCH) -> int | None:
    """Fold the pending deltas into the compacted counts, `batch` deltas per short
    transaction, until none is left that was committed when it looked. Returns how
    many deltas it folded; None: another compaction (or a rebuild) is running."""
    if not clock_counts_enabled():
        return 0
    with advisory_session_lock(_LOCK) as got:
        if not got:
            return None
        folded = 0
        while True:
            moved = _compact_once(batch)
            folded += moved
            if moved < batch:
                break
    if folded:
        logger.info("retention.clock_counts_compacted", extra={"deltas": folded})
    return folded


def _compact_once(batch: int) -> int:
    counts, deltas = ClockCount._meta.db_table, ClockDelta._meta.db_table
    # Deleted and added in one statement: exactly the deltas this transaction sees
    # (an uncommitted one is not, and waits for the next pass).
    sql = (
        f"WITH moved AS (DELETE FROM {deltas} WHERE id IN ("  # noqa: S608  # nosec B608
        f"SELECT id FROM {deltas} ORDER BY id LIMIT %s) "
        "RETURNING scope, day, rows), "
        "summed AS (SELECT scope, day, sum(rows) AS rows FROM moved "
        "GROUP BY scope, day), "
        f"added AS (INSERT INTO {counts} AS c (scope, day, rows) "
        "SELECT scope, day, rows FROM summed "
        "ON CONFLICT (scope, day) DO UPDATE SET rows = c.rows + EXCLUDED.rows "
        "RETURNING 1) "
        "SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM added)"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [batch])
        moved = cursor.fetchone()[0]
        if moved:
            cursor.execute(f"DELETE FROM {counts} WHERE rows = 0")  # noqa: S608  # nosec B608
    return moved


# Forgetting whole days -------------------------------------------------------------


def clock_counts_forget(*, scope: str, start: datetime, end: datetime) -> int:
    """Write the deltas that take the days [`start`, `end`) of `scope` to zero:
    exactly what the counts say of them now. For rows removed without a trigger
    firing (a dropped partition): call it in the transaction that drops them, after
    the drop, whose lock has let every writer of those rows commit first. Both ends
    are UTC midnights. Returns the rows forgotten. Raises ValueError."""
    if scope not in KEYS_BY_NAME and scope != ALL_CONSENT_EVENTS:
        raise ValueError(f"Unknown clock scope {scope!r}.")
    for moment in (start, end):
        if moment.tzinfo is None or day_start(moment) != moment:
            raise ValueError("Forget whole UTC days: start and end at midnight UTC.")
    if not clock_counts_enabled():
        return 0
    counts, deltas = ClockCount._meta.db_table, ClockDelta._meta.db_table
    sql = (
        f"INSERT INTO {deltas} (scope, day, rows) "  # noqa: S608  # nosec B608
        "SELECT scope, day, -sum(rows) FROM ("
        f"SELECT scope, day, rows FROM {counts} "
        "WHERE scope = %s AND day >= %s AND day < %s UNION ALL "
        f"SELECT scope, day, rows FROM {deltas} "
        "WHERE scope = %s AND day >= %s AND day < %s) c "
        "GROUP BY scope, day HAVING sum(rows) <> 0 RETURNING -rows"
    )
    first, last = start.astimezone(UTC).date(), end.astimezone(UTC).date()
    with connection.cursor() as cursor:
        cursor.execute(sql, [scope, first, last, scope, first, last])
        return sum(rows for (rows,) in cursor.fetchall())


# Rebuilding from the rows ----------------------------------------------------------


def clock_counts_rebuild(*, span_days: int = REBUILD_SPAN_DAYS) -> int:
    """Recount every histogram from the rows, `span_days` of clock per transaction,
    while writers go on: each transaction (one snapshot) sets a day's compacted count
    to the rows it counts less the deltas it sees pending, so that counts plus deltas
    equal the rows in that snapshot and in every later one. Returns the days whose
    count changed. Raises RuntimeError when a compaction is running."""
    if not clock_counts_enabled():
        return 0
    changed = 0
    with advisory_session_lock(_LOCK) as got:
        if not got:
            raise RuntimeError(
                "A compaction or rebuild of the clock counts is running."
            )
        for name in [key.name for key in KEYS] + [ALL_CONSENT_EVENTS]:
            span = _key_span(name)
            if span is None:
                continue
            first, last = span
            while first <= last:
                upto = min(first + timedelta(days=span_days), last + timedelta(days=1))
                changed += _rebuild_days(name, first, upto)
                first = upto
    logger.info("retention.clock_counts_rebuilt", extra={"days_changed": changed})
    return changed


def _key_span(name: str) -> tuple[date, date] | None:
    """The first and last day the rebuild of `name` covers: every day with a row, a
    count or a pending delta."""
    days: list[date] = []
    counts, deltas = ClockCount._meta.db_table, ClockDelta._meta.db_table
    with connection.cursor() as cursor:
        for table in (counts, deltas):
            cursor.execute(
                f"SELECT min(day), max(day) FROM {table} WHERE scope = %s",  # noqa: S608  # nosec B608
                [name],
            )
            days += [d for d in cursor.fetchone() if d is not None]
    days += [moment.astimezone(UTC).date() for moment in _clock_range(name)]
    if not days:
        return None
    return min(days), max(days)


def _clock_range(name: str) -> list[datetime]:
    """The earliest and latest clock of `name`'s rows (none if it has no rows)."""
    if name == ALL_CONSENT_EVENTS:
        rows, field = consent_event_queryset(), "created_at"
        bounds = rows.order_by().aggregate(lo=Min(field), hi=Max(field))
        return [b for b in bounds.values() if b is not None]
    key = KEYS_BY_NAME[name]
    if key.field is None:
        span = consent_withdrawals_span()
        return list(span) if span else []
    scope = SCOPES[key.covers]
    rows = scope.rows(key.policy()).order_by()
    bounds = rows.aggregate(lo=Min(key.field), hi=Max(key.field))
    return [b for b in bounds.values() if b is not None]


def _rebuild_days(name: str, first: date, upto: date) -> int:
    """Set the compacted counts of `name`'s days [`first`, `upto`) from the rows, in
    one transaction (one snapshot). Returns the days whose count changed."""
    since = datetime.combine(first, time(), tzinfo=UTC)
    before = datetime.combine(upto, time(), tzinfo=UTC)
    counts_table, deltas_table = ClockCount._meta.db_table, ClockDelta._meta.db_table
    with _one_snapshot(), connection.cursor() as cursor:
        if name == ALL_CONSENT_EVENTS:
            truth = _consent_events_by_creation(since, before)
        else:
            truth = rows_by_day(KEYS_BY_NAME[name], since=since, before=before)
        pending: dict[date, int] = defaultdict(int)
        cursor.execute(
            f"SELECT day, sum(rows) FROM {deltas_table} "  # noqa: S608  # nosec B608
            "WHERE scope = %s AND day >= %s AND day < %s GROUP BY day",
            [name, first, upto],
        )
        for day, rows in cursor.fetchall():
            pending[day] = int(rows)
        cursor.execute(
            f"SELECT day, rows FROM {counts_table} "  # noqa: S608  # nosec B608
            "WHERE scope = %s AND day >= %s AND day < %s",
            [name, first, upto],
        )
        stored = {day: int(rows) for day, rows in cursor.fetchall()}
        wanted = {
            day: truth.get(day, 0) - pending.get(day, 0)
            for day in set(truth) | set(pending) | set(stored)
        }
        changes = {
            day: rows for day, rows in wanted.items() if stored.get(day, 0) != rows
        }
        if not changes:
            return 0
        days = sorted(changes)
        cursor.execute(
            f"DELETE FROM {counts_table} WHERE scope = %s AND day = ANY(%s)",  # noqa: S608  # nosec B608
            [name, days],
        )
        cursor.execute(
            f"INSERT INTO {counts_table} (scope, day, rows) "  # noqa: S608  # nosec B608
            "SELECT %s, d, r FROM unnest(%s::date[], %s::bigint[]) AS t(d, r) "
            "WHERE r <> 0",
            [name, days, [changes[day] for day in days]],
        )
    return len(changes)


class _one_snapshot:
    """A transaction whose statements all read one snapshot (REPEATABLE READ) when
    it is the outermost one; inside a caller's transaction, that transaction."""

    def __enter__(self) -> None:
        self._outer = not connection.in_atomic_block
        self._atomic = transaction.atomic()
        self._atomic.__enter__()
        if self._outer:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")

    def __exit__(self, *exc: Any) -> None:
        self._atomic.__exit__(*exc)


# The triggers -------------------------------------------------------------------------

_FUNCTIONS = {
    "customers.Customer": "retention_clock_customers",
    "access.AccessLogEntry": "retention_clock_access_log",
    "access.Interaction": "retention_clock_interactions",
    "consent.ConsentEvent": "retention_clock_consent_events",
    "consent.ConsentState": "retention_clock_consent_states",
}
# Consent events are append-only (consent's own trigger refuses an UPDATE).
_EVENTS = {"consent.ConsentEvent": ("INSERT", "DELETE")}


def _table(label: str) -> str:
    return apps.get_model(label)._meta.db_table


def _column(label: str, field: str) -> str:
    return apps.get_model(label)._meta.get_field(field).column


def _utc_day(expression: str) -> str:
    return f"(({expression}) AT TIME ZONE 'UTC')::date"


def _customer_keys(alias: str) -> str:
    """The keys and days of customer row `alias`: a LATERAL subquery."""

    def col(field: str) -> str:
        return f'{alias}."{_column("customers.Customer", field)}"'

    not_erased = f"{col('erased_at')} IS NULL"
    values = []
    for key in KEYS:
        if key.covers == Covers.CLOSED_ACCOUNTS:
            member = (
                f"{not_erased} AND {col('status')} = '{CustomerStatus.CLOSED.value}'"
                f" AND {col('closed_at')} IS NOT NULL"
            )
        elif key.covers == Covers.INACTIVE_CUSTOMERS:
            member = not_erased
        elif key.covers == Covers.CUSTOMER_PII:
            holding = " OR ".join(
                f"{col(name)} IS NOT NULL" for name in fields_in_category(key.category)
            )
            member = f"{not_erased} AND ({holding})"
        else:
            continue
        assert key.field is not None  # noqa: S101  # nosec B101 - customer keys have one
        values.append(f"('{key.name}', {col(key.field)}, {member})")
    return (
        f"SELECT v.scope, {_utc_day('v.at')} AS day "  # noqa: S608  # nosec B608
        f"FROM (VALUES {', '.join(values)}) AS v(scope, at, member) "
        "WHERE v.member AND v.at IS NOT NULL"
    )


def _single_key(label: str, name: str, field: str) -> Any:
    def keys(alias: str) -> str:
        column = f'{alias}."{_column(label, field)}"'
        return (
            f"SELECT '{name}'::text AS scope, {_utc_day(column)} AS day "
            f"WHERE {column} IS NOT NULL"
        )

    return keys


def _keyed_function(name: str, keys: Any) -> str:
    """A trigger function that appends, per key and day, the rows that entered it
    (the statement's new rows) less those that left it (its old rows)."""
    delta = ClockDelta._meta.db_table

    def insert(parts: list[str]) -> str:
        union = " UNION ALL ".join(parts)
        return (
            f"INSERT INTO {delta} (scope, day, rows) "  # noqa: S608  # nosec B608
            "SELECT scope, day, sum(sign) "
            f"FROM ({union}) c GROUP BY scope, day HAVING sum(sign) <> 0;"
        )

    new, old = (
        f"SELECT k.scope, k.day, {sign} AS sign "  # noqa: S608  # nosec B608
        f"FROM {rows} r CROSS JOIN LATERAL ({keys('r')}) k"
        for rows, sign in (("clock_new", 1), ("clock_old", -1))
    )
    return _function(name, insert([new]), insert([old]), insert([new, old]))


def _function(name: str, on_insert: str, on_delete: str, on_update: str) -> str:
    return (
        f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $f$\n"
        "BEGIN\n"
        f"  IF TG_OP = 'INSERT' THEN\n    {on_insert}\n"
        f"  ELSIF TG_OP = 'DELETE' THEN\n    {on_delete}\n"
        f"  ELSE\n    {on_update}\n  END IF;\n"
        "  RETURN NULL;\nEND\n$f$"
    )


def _consent_events_function() -> str:
    delta = ClockDelta._meta.db_table
    states = _table("consent.ConsentState")
    created = _column("consent.ConsentEvent", "created_at")

    def statement(rows: str, sign: int) -> str:
        return (
            f"INSERT INTO {delta} (scope, day, rows) "  # noqa: S608  # nosec B608
            f"SELECT '{ALL_CONSENT_EVENTS}', {_utc_day(f'e.{created}')}, "
            f"{sign} * count(*) "
            f"FROM {rows} e GROUP BY 2 "
            f"UNION ALL SELECT 'consent_events', {_utc_day('s.updated_at')}, "
            f"{sign} * count(*) FROM {rows} e JOIN {states} s "
            "ON s.customer_id = e.customer_id AND s.purpose_id = e.purpose_id "
            "WHERE NOT s.granted GROUP BY 2;"
        )

    # The states first: a change of one waits for this delete to commit, or this
    # waits for it and then reads its outcome (READ COMMITTED: the next statement's
    # snapshot), so an event leaves its day once.
    lock = (
        f"PERFORM 1 FROM {states} s "  # noqa: S608  # nosec B608
        "WHERE (s.customer_id, s.purpose_id) IN "
        "(SELECT customer_id, purpose_id FROM clock_old) ORDER BY s.id FOR SHARE;"
    )
    return _function(
        "retention_clock_consent_events",
        statement("clock_new", 1),
        lock + "\n    " + statement("clock_old", -1),
        "NULL;",
    )


def _consent_states_function() -> str:
    delta = ClockDelta._meta.db_table
    events = _table("consent.ConsentEvent")

    def insert(parts: list[str]) -> str:
        union = " UNION ALL ".join(parts)
        return (
            f"INSERT INTO {delta} (scope, day, rows) "  # noqa: S608  # nosec B608
            "SELECT 'consent_events', ch.day, sum(ch.sign * n.events) FROM ("
            "SELECT customer_id, purpose_id, day, sum(sign) AS sign "
            f"FROM ({union}) c GROUP BY customer_id, purpose_id, day "
            "HAVING sum(sign) <> 0) ch "
            f"CROSS JOIN LATERAL (SELECT count(*) AS events FROM {events} e "
            "WHERE e.customer_id = ch.customer_id AND e.purpose_id = ch.purpose_id) n "
            "GROUP BY ch.day HAVING sum(ch.sign * n.events) <> 0;"
        )

    def part(rows: str, sign: int) -> str:
        return (
            f"SELECT customer_id, purpose_id, {_utc_day('updated_at')} AS day, "  # noqa: S608  # nosec B608
            f"{sign} AS sign FROM {rows} WHERE NOT granted"
        )

    new, old = part("clock_new", 1), part("clock_old", -1)
    return _function(
        "retention_clock_consent_states",
        insert([new]),
        insert([old]),
        insert([new, old]),
    )


def _functions() -> dict[str, str]:
    return {
        "customers.Customer": _keyed_function(
            "retention_clock_customers", _customer_keys
        ),
        "access.AccessLogEntry": _keyed_function(
            "retention_clock_access_log",
            _single_key("access.AccessLogEntry", "access_log", "created_at"),
        ),
        "access.Interaction": _keyed_function(
            "retention_clock_interactions",
            _single_key("access.Interaction", "interactions", "closed_at"),
        ),
        "consent.ConsentEvent": _consent_events_function(),
        "consent.ConsentState": _consent_states_function(),
    }


_REFERENCING = {
    "INSERT": "REFERENCING NEW TABLE AS clock_new",
    "UPDATE": "REFERENCING OLD TABLE AS clock_old NEW TABLE AS clock_new",
    "DELETE": "REFERENCING OLD TABLE AS clock_old",
}


def clock_triggers_install(schema_editor: Any) -> None:
    """Migration step: the trigger functions and their statement triggers (one per
    event: a trigger with transition tables fires on one). PostgreSQL only."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for label, body in _functions().items():
        schema_editor.execute(body)
        table, function = _table(label), _FUNCTIONS[label]
        for event in _EVENTS.get(label, ("INSERT", "UPDATE", "DELETE")):
            schema_editor.execute(
                f"CREATE TRIGGER retention_clock_{event.lower()} AFTER {event} "
                f'ON "{table}" {_REFERENCING[event]} '
                f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
            )


def clock_triggers_remove(schema_editor: Any) -> None:
    """Migration step, the reverse of `clock_triggers_install`."""
    if schema_editor.connection.vendor != "postgresql":
        return
    for label, function in _FUNCTIONS.items():
        table = _table(label)
        for event in ("INSERT", "UPDATE", "DELETE"):
            schema_editor.execute(
                f'DROP TRIGGER IF EXISTS retention_clock_{event.lower()} ON "{table}"'
            )
        schema_editor.execute(f"DROP FUNCTION IF EXISTS {function}()")
