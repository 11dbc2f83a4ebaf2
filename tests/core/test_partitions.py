import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.core import partitions
from apps.core.partitions import (
    PartitionBusy,
    disposed_name,
    month_next,
    month_start,
    partition_detach,
    partition_month_create,
    partition_name,
    partitions_disposed,
    partitions_disposed_drop,
    partitions_ensure,
    partitions_list,
    table_is_partitioned,
    table_partition,
    table_unpartition,
)
from apps.monitoring.models import LookupKind, StaffLookup
from tests.schema import migrate_to_latest

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

LOGS = {
    "access_accesslogentry": "created_at",
    "monitoring_stafflookup": "created_at",
    "retention_disposallogentry": "disposed_at",
}
LOOKUPS = "monitoring_stafflookup"


def partition_drop(table: str, name: str) -> int:
    """Both steps of a month's disposal: detached, then dropped."""
    rows = partition_detach(table, name)
    partitions_disposed_drop(table)
    return rows


def lookup(staff, at: datetime) -> StaffLookup:
    return StaffLookup.objects.create(
        staff=staff, kind=LookupKind.SEARCH, created_at=at
    )


def checks_now() -> None:
    """Run the deferred foreign-key checks of the rows this test inserted: a table
    with pending trigger events cannot be dropped (in production, its rows were
    committed long before)."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def where(row: StaffLookup) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tableoid::regclass::text FROM {LOOKUPS} WHERE id = %s",  # noqa: S608
            [row.pk],
        )
        return cursor.fetchone()[0]


def months_from_now(n: int) -> datetime:
    start = month_start(timezone.now())
    for _ in range(n):
        start = month_next(start)
    return start


def test_the_logs_are_partitioned_by_their_time_column():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, a.attname FROM pg_partitioned_table p "
            "JOIN pg_class c ON c.oid = p.partrelid "
            "JOIN pg_attribute a ON a.attrelid = p.partrelid "
            "AND a.attnum = p.partattrs[0] WHERE p.partstrat = 'r'"
        )
        found = dict(cursor.fetchall())
    assert {table: found.get(table) for table in LOGS} == LOGS


def test_this_month_and_three_ahead_exist_with_a_default():
    names = [p.name for p in partitions_list(LOOKUPS)]
    for ahead in range(4):
        assert partition_name(LOOKUPS, months_from_now(ahead)) in names
    assert names[-1] == f"{LOOKUPS}_default"


def test_nothing_points_at_a_partitioned_log():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE contype = 'f' "
            "AND confrelid = ANY(%s::regclass[])",
            [list(LOGS)],
        )
        assert cursor.fetchall() == []


def test_rows_far_in_the_past_or_future_land_in_the_default(support_agent):
    now = timezone.now()
    old, late = (
        lookup(support_agent, now - timedelta(days=900)),
        lookup(support_agent, now + timedelta(days=900)),
    )
    current = lookup(support_agent, now)
    assert where(old) == where(late) == f"{LOOKUPS}_default"
    assert where(current) == partition_name(LOOKUPS, month_start(now))
    assert StaffLookup.objects.filter(pk=old.pk).exists()  # Django's key is still id


def test_ensure_creates_months_ahead_and_moves_the_defaults_rows_in(support_agent):
    later = months_from_now(10)
    row = lookup(support_agent, later + timedelta(days=3))
    other = lookup(support_agent, months_from_now(20))
    created = partitions_ensure(now=later)
    for ahead in range(4):
        start = months_from_now(10 + ahead)
        assert partition_name(LOOKUPS, start) in created
    assert where(row) == partition_name(LOOKUPS, later)
    assert where(other) == f"{LOOKUPS}_default"
    assert StaffLookup.objects.get(pk=row.pk).created_at == later + timedelta(days=3)
    # Each made standalone with its range as a CHECK constraint, then attached.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s",
            [partition_name(LOOKUPS, later) + "_range"],
        )
        assert "created_at >=" in cursor.fetchone()[0]
    assert partitions_ensure(now=later) == []  # a repeat call makes nothing


def test_list_counts_rows_only_when_asked(support_agent):
    lookup(support_agent, timezone.now())
    this_month = partition_name(LOOKUPS, month_start(timezone.now()))
    plain = {p.name: p.rows for p in partitions_list(LOOKUPS)}
    counted = {p.name: p.rows for p in partitions_list(LOOKUPS, counts=True)}
    assert plain[this_month] is None
    assert counted[this_month] == 1
    [default] = [p for p in partitions_list(LOOKUPS) if p.is_default]
    assert (default.start, default.end) == (None, None)


def test_drop_detaches_counts_and_drops_a_month(support_agent):
    start = datetime(2020, 3, 1, tzinfo=UTC)
    assert partition_month_create(LOOKUPS, "created_at", start)
    for day in (1, 15, 31):
        lookup(support_agent, start.replace(day=day))
    kept = lookup(support_agent, timezone.now())
    checks_now()
    assert partition_drop(LOOKUPS, partition_name(LOOKUPS, start)) == 3
    assert partition_name(LOOKUPS, start) not in [
        p.name for p in partitions_list(LOOKUPS)
    ]
    assert list(StaffLookup.objects.values_list("pk", flat=True)) == [kept.pk]
    with connection.cursor() as cursor:
        for name in (
            partition_name(LOOKUPS, start),
            disposed_name(partition_name(LOOKUPS, start)),
        ):
            cursor.execute("SELECT to_regclass(%s)", [name])
            assert cursor.fetchone()[0] is None
    assert partitions_disposed(LOOKUPS) == []


def test_a_crash_between_the_steps_leaves_a_marked_table_ensure_drops(
    support_agent, capsys
):
    """Step 1 only (detach, count, rename): the rows are out of the log, in a table
    marked for dropping that `partitions list` shows and `partitions_ensure` drops."""
    start = datetime(2020, 4, 1, tzinfo=UTC)
    assert partition_month_create(LOOKUPS, "created_at", start)
    for day in (2, 20):
        lookup(support_agent, start.replace(day=day))
    kept = lookup(support_agent, timezone.now())
    checks_now()
    name = partition_name(LOOKUPS, start)
    assert partition_detach(LOOKUPS, name) == 2
    assert name not in [p.name for p in partitions_list(LOOKUPS)]
    assert partitions_disposed(LOOKUPS) == [disposed_name(name)]
    assert list(StaffLookup.objects.values_list("pk", flat=True)) == [kept.pk]
    call_command("partitions", "list")
    assert f"{disposed_name(name):<44} detached, to drop" in capsys.readouterr().out
    partitions_ensure()
    assert partitions_disposed(LOOKUPS) == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [disposed_name(name)])
        assert cursor.fetchone()[0] is None


def test_drop_refuses_the_default_and_strangers():
    with pytest.raises(ValueError, match="not a monthly partition"):
        partition_drop(LOOKUPS, f"{LOOKUPS}_default")
    with pytest.raises(ValueError, match="not a monthly partition"):
        partition_drop(LOOKUPS, "access_accesslogentry_default")


def test_drop_gives_up_when_a_reader_holds_the_log(monkeypatch):
    """A long reader: the drop waits LOCK_TIMEOUT, not for the reader, and raises."""
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT", "200ms")
    reading, done = threading.Event(), threading.Event()

    def reader():
        with _connect(autocommit=False) as other:
            other.execute(f"SELECT count(*) FROM {LOOKUPS}")  # noqa: S608
            reading.set()
            done.wait(10)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert reading.wait(10)
        this_month = partition_name(LOOKUPS, month_start(timezone.now()))
        with pytest.raises(PartitionBusy):
            partition_drop(LOOKUPS, this_month)
        assert this_month in [p.name for p in partitions_list(LOOKUPS)]
        with connection.cursor() as cursor:  # the caller's transaction goes on
            cursor.execute("SELECT current_setting('lock_timeout')")
            assert cursor.fetchone()[0] != "200ms"
    finally:
        done.set()
        thread.join()


def test_conversion_to_a_plain_table_and_back_keeps_rows_and_ids(support_agent):
    rows = [
        lookup(support_agent, timezone.now() - timedelta(days=d)) for d in (0, 70, 400)
    ]
    with connection.schema_editor() as editor:
        table_unpartition(editor, table=LOOKUPS, column="created_at")
    assert not table_is_partitioned(LOOKUPS)
    assert partitions_list(LOOKUPS) == []
    after = lookup(support_agent, timezone.now())
    assert after.pk > rows[-1].pk  # the id sequence went on where it was
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = %s",
            [f"{LOOKUPS}_pkey"],
        )
        assert cursor.fetchone()[0] == "PRIMARY KEY (id)"
    with connection.schema_editor() as editor:
        table_partition(editor, table=LOOKUPS, column="created_at")
    assert table_is_partitioned(LOOKUPS)
    ids = [*(r.pk for r in rows), after.pk]
    assert sorted(StaffLookup.objects.values_list("pk", flat=True)) == sorted(ids)
    oldest = month_start(timezone.now() - timedelta(days=400))
    # Months from the oldest row's to three ahead, and the default.
    names = [p.name for p in partitions_list(LOOKUPS)]
    assert names[0] == partition_name(LOOKUPS, oldest)
    assert names[-2] == partition_name(LOOKUPS, months_from_now(3))
    assert where(rows[-1]) == partition_name(LOOKUPS, oldest)
    assert lookup(support_agent, timezone.now()).pk > after.pk
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = %s "
            "AND indexname IN ('monitoring_lookup_kind', 'monitoring_lookup_staff')",
            [LOOKUPS],
        )
        assert cursor.fetchone()[0] == 2
        cursor.execute(
            "SELECT condeferrable AND condeferred FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype = 'f'",
            [LOOKUPS],
        )
        assert cursor.fetchall() == [(True,)]


@pytest.mark.django_db(transaction=True)
def test_the_migration_reverses_and_applies_again(support_agent):
    row = lookup(support_agent, timezone.now() - timedelta(days=40))
    executor = MigrationExecutor(connection)
    executor.migrate([("monitoring", "0002_alert_notified_at")])
    assert not table_is_partitioned(LOOKUPS)
    assert StaffLookup.objects.filter(pk=row.pk).exists()
    migrate_to_latest("monitoring")
    assert table_is_partitioned(LOOKUPS)
    assert where(row) == partition_name(
        LOOKUPS, month_start(timezone.now() - timedelta(days=40))
    )


def test_the_command_lists_and_ensures(capsys):
    call_command("partitions", "list", "--counts")
    out = capsys.readouterr().out
    assert "access_accesslogentry by created_at, 3 months ahead" in out
    assert "DEFAULT (other months)" in out
    call_command("partitions", "ensure")
    assert capsys.readouterr().out.endswith("0 partitions created.\n")


def test_a_month_is_attached_while_a_writer_holds_the_log(monkeypatch):
    """ATTACH of a table whose CHECK constraint proves its range takes SHARE UPDATE
    EXCLUSIVE on the log: a writer's ROW EXCLUSIVE lock does not stop it."""
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT", "500ms")
    writing, done = threading.Event(), threading.Event()

    def writer():
        with _connect(autocommit=False) as other:
            other.execute(f"LOCK TABLE ONLY {LOOKUPS} IN ROW EXCLUSIVE MODE")
            writing.set()
            done.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(10)
        assert partition_month_create(LOOKUPS, "created_at", months_from_now(30))
        with pytest.raises(PartitionBusy):  # a drop needs ACCESS EXCLUSIVE: it waits
            partition_drop(LOOKUPS, partition_name(LOOKUPS, months_from_now(30)))
    finally:
        done.set()
        thread.join()


def test_a_table_another_points_at_is_not_converted():
    with connection.schema_editor() as editor:
        table_unpartition(editor, table=LOOKUPS, column="created_at")
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE lookup_pointer (lookup_id bigint REFERENCES {LOOKUPS} (id))"
        )
    with (
        pytest.raises(
            RuntimeError, match="referenced by a foreign key of lookup_pointer"
        ),
        connection.schema_editor() as editor,
    ):
        table_partition(editor, table=LOOKUPS, column="created_at")


def _connect(*, autocommit: bool = True) -> psycopg.Connection:
    """Another connection to the test database (a transaction of its own when not
    `autocommit`: its locks are held until the block ends)."""
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
        password=settings["PASSWORD"] or None,
        autocommit=autocommit,
    )


@pytest.mark.django_db(transaction=True)
def test_writers_of_the_log_wait_milliseconds_while_a_month_is_dropped(
    support_agent, monkeypatch
):
    """Two real connections: while the drop holds the month's SHARE lock (counting,
    made to last 1 s here) and then the log's for DETACH, a writer inserting rows of
    now through the log waits well under 0.5 s per insert; the DROP's transaction
    holds no lock on the log at all."""
    start = datetime(2019, 5, 1, tzinfo=UTC)
    assert partition_month_create(LOOKUPS, "created_at", start)
    for day in (3, 4, 5):
        lookup(support_agent, start.replace(day=day))
    name = partition_name(LOOKUPS, start)
    counted, stop = threading.Event(), threading.Event()
    waits: list[float] = []
    real_waiters = partitions._waiters

    def slow_waiters(cursor, table):  # called holding the month's SHARE lock
        counted.set()
        time.sleep(1)
        return real_waiters(cursor, table)

    parent_locks: list[list[str]] = []
    real_restore = partitions._lock_timeout_restore

    def restore(cursor, before):  # the end of each of the drop's transactions
        cursor.execute(
            "SELECT mode FROM pg_locks WHERE pid = pg_backend_pid() "
            "AND relation = %s::regclass",
            [LOOKUPS],
        )
        parent_locks.append(sorted(row[0] for row in cursor.fetchall()))
        real_restore(cursor, before)

    monkeypatch.setattr(partitions, "_waiters", slow_waiters)
    monkeypatch.setattr(partitions, "_lock_timeout_restore", restore)

    def writer():
        with _connect() as other:
            # Lock waits measured, not the disk's: no flush at each commit.
            other.execute("SET synchronous_commit = off")
            while not stop.is_set():
                began = time.perf_counter()
                other.execute(
                    f"INSERT INTO {LOOKUPS} (staff_id, kind, search_by, created_at) "  # noqa: S608
                    "VALUES (%s, 'search', '', now())",
                    [support_agent.pk],
                )
                waits.append(time.perf_counter() - began)
                time.sleep(0.01)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert partition_drop(LOOKUPS, name) == 3
        assert counted.is_set()
    finally:
        stop.set()
        thread.join()
    assert len(waits) > 20  # the writer went on during the second of counting
    assert max(waits) < 0.5, max(waits)
    # Step 1 ends holding the log's ACCESS EXCLUSIVE lock (DETACH, held to its
    # commit); the DROP holds none.
    assert parent_locks == [["AccessExclusiveLock"], []]
    assert partitions_disposed(LOOKUPS) == []


@pytest.mark.django_db(transaction=True)
def test_a_statement_queued_on_the_month_makes_the_drop_give_up_not_deadlock(
    support_agent, monkeypatch
):
    """A DELETE through the log locks every partition: queued on the month the drop
    holds SHARE, it holds the log. The drop then gives up (PartitionBusy) instead of
    waiting on the log for it, and the DELETE goes on."""
    start = datetime(2019, 6, 1, tzinfo=UTC)
    assert partition_month_create(LOOKUPS, "created_at", start)
    lookup(support_agent, start.replace(day=2))
    name = partition_name(LOOKUPS, start)
    outcome: list[object] = []

    def deleter():
        with _connect() as other:
            try:
                other.execute(f"DELETE FROM {LOOKUPS} WHERE id = -1")  # noqa: S608
                outcome.append("deleted")
            except psycopg.Error as exc:  # pragma: no cover - the failure shown
                outcome.append(exc)

    thread = threading.Thread(target=deleter)
    real_waiters = partitions._waiters

    def queued_first(cursor, table):
        thread.start()
        time.sleep(0.5)  # the DELETE is queued on the month by now
        return real_waiters(cursor, table)

    monkeypatch.setattr(partitions, "_waiters", queued_first)
    try:
        with pytest.raises(PartitionBusy):
            partition_drop(LOOKUPS, name)
    finally:
        thread.join(10)
    assert outcome == ["deleted"]
    assert name in [p.name for p in partitions_list(LOOKUPS)]
    monkeypatch.setattr(partitions, "_waiters", real_waiters)
    assert partition_drop(LOOKUPS, name) == 1


def test_detach_concurrently_is_refused_with_a_default_partition():
    """Why the drop does not use DETACH ... CONCURRENTLY: every log has a DEFAULT."""
    name = partition_name(LOOKUPS, months_from_now(2))
    with (
        _connect() as other,
        pytest.raises(psycopg.Error, match="default partition exists"),
    ):
        other.execute(f"ALTER TABLE {LOOKUPS} DETACH PARTITION {name} CONCURRENTLY")


@pytest.mark.django_db(transaction=True)
def test_two_callers_making_the_same_month_at_once_both_succeed():
    """The beat job and `manage.py partitions ensure` at the same moment: the second
    waits for the first and finds the month made, rather than failing on it."""
    start = months_from_now(31)
    ready = threading.Barrier(2)
    results, errors = [], []

    def make():
        try:
            ready.wait(10)
            results.append(partition_month_create(LOOKUPS, "created_at", start))
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=make) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results) == [False, True]


@pytest.mark.django_db(transaction=True)
def test_attaching_a_month_waits_briefly_for_the_tables_its_keys_point_at():
    """ATTACH clones the log's foreign keys onto the month: SHARE ROW EXCLUSIVE on the
    users table, whose writers queue behind the wait; it gives up after the short
    bound, not the month's."""
    with _connect() as other, other.transaction():
        other.execute("LOCK TABLE accounts_user IN ROW EXCLUSIVE MODE")
        started = time.monotonic()
        with pytest.raises(PartitionBusy):
            partition_month_create(LOOKUPS, "created_at", months_from_now(32))
        waited = time.monotonic() - started
    assert waited < 1.5  # HOT_LOCK_TIMEOUT (0.5 s), not LOCK_TIMEOUT (2 s)
    assert partition_month_create(LOOKUPS, "created_at", months_from_now(32))
