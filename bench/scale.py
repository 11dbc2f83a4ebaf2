"""One node: Amanah at 100,000 customers and at 10,000,000 (`BENCH_CUSTOMERS`).

`make bench-scale`; not part of `make bench` (a 10,000,000-customer run loads for the
better part of an hour and needs tens of GB of disk: run it alone). Each size is built
in a database of its own (`amanah_scale_<pid>_<size>`), in a process of its own,
measured, and dropped; then one table compares the two.

Data at each size N, loaded by SQL with triggers off (as the other benches load it,
`_setup.sql_load`), secondary indexes built after:

- N customers: 10,000 through the service (keys wrapped, PII sealed: the agents'
  customers, whose list opens them), the rest by SQL (random bytes for keys, no PII),
  30% of those closed more than two years ago (overdue under `closed-accounts`);
- one consent event per customer and purpose (5 purposes: 5 N events, about 60%
  grants) and the consent state they replay to (5 N);
- 3 access-log rows per customer (3 N), spread evenly over the 12 whole months before
  the current one, through the parent table into its monthly partitions (made first
  for those months); every month's rows from its second day on;
- the agents of bench/access.py: 20 other agents with 500 open cases each, 500 closed
  cases of the agent, and 50 open assignments of the agent through `interaction_open`;
- then the retention counts rebuilt (`retention_counts_rebuild`: the load bypasses
  the triggers that keep them) and VACUUM ANALYZE.

Measured at each size, the reads first and the destructive steps last:

1. agent: the agent's `GET /api/v1/customers/` with 50 assignments (Django's test
   request factory, as bench/access.py), median of 31; goal: at N within 1.2x of at
   100,000.
2. audience: the CSV audience of one purpose (the streamed API response, consumed to
   its end) vs `COPY (the same ids) TO STDOUT` of the state table; goal ≤1.5x COPY.
3. report: `retention_report()`, median of 3; goal < 1 s at N. cockpit: `cockpit_get()`
   and the cockpit page through a signed-in test client (as bench/cockpit.py), median
   of 7; goal < 200 ms at N.
4. replica: a streaming standby made with `pg_basebackup -R` on a spare port
   (bench/_replica.py), `DATABASE_REPLICA_URL` pointing at it; `consent_record` from 4
   threads for 15 s, alone and while another process reads the audience stream and
   the retention report through `replica_reads()` in a loop (3 rounds of each,
   interleaved); goal: writes per second alone ≤ 1.2x those with the reads. The
   standby, the reader, the writers and the primary share this machine's cores: no
   process is pinned, so the standby's replay and the reader's CPU count against the
   primary here, as they would not on separate machines; `BENCH_REPLICA_PIN=1` puts
   the standby and the reader on half the cores and the primary and the writers on
   the other half (alone and beside alike), given back on leaving. Skipped, saying
   why, when the disk has not room for a copy of the cluster.
5. notices: breach notices queued for N affected people (`notices_queue` in a forked
   process, bench/incidents.py's measurer); goal: its peak resident memory at N
   within 1.2x of its peak at 100,000 ("flat").
6. partition: access-log retention of one month (with the policy's period set so that
   exactly the oldest month is due): the disposal run for the `access-log` policy
   (whole partitions dropped) vs a batched DELETE (5,000 rows a transaction) of the
   next month vs a bare `DROP TABLE` of the month after; goal < 1 s.
7. disposal: the 30% overdue disposed of by `purge_run` (batches of at most 5,000,
   sized to about half a second each, in their own transactions, closed-accounts set to
   "delete", the other policies off; in a process of its own: its peak resident
   memory, its longest batch) vs one raw SQL statement deleting the same rows with its
   deferred foreign-key checks, run first in a transaction rolled back, then VACUUM;
   goals ≤1.5x SQL, peak < 150 MB, no transaction over 2 s. The statement is
   cancelled after `BENCH_RAW_CAP_S` seconds (1800): its time is then a floor, the
   table says "SQL > ..." and the ratio "<...", and the goal holds when ours is within
   1.5x of that floor. A batch that runs out of its time
   (`AMANAH_DISPOSAL_TRANSACTION_SECONDS`) is rolled back and tried again smaller;
   the table counts those. `--dispose DB OUT` alone, with `BENCH_DISPOSE_STOP_S`,
   measures the first seconds of our disposal only (on a kept database, which it
   leaves partly disposed, its run failed: the next run resumes it).

`BENCH_SMALL` (100,000) sets the small size. `BENCH_SCALE_KEEP=1` leaves each size's
database in place after its measurements (for `--measure DB OUT`, which runs the
chosen parts again on such a database with the code as it is then; drop it with
`dropdb -h 127.0.0.1 -U postgres DB` when done). `BENCH_SCALE_PARTS=agent,audience,...`
runs only those measurements (the load is the same, but for `notices` alone: it
reads nothing of consent or the access log, and only the customers are loaded).
`BENCH_SCALE_JSON=path` keeps the results (default `bench/results/scale-<pid>.json`);
`python bench/scale.py --print path [measured ...]` prints the table of a finished run
again, the parts of any `--measure` outputs named after it in place of the run's.
Progress lines go to stdout with the elapsed time; load phases are timed and the
database's size recorded. A missed goal says NO in the table; only an error makes the
exit status non-zero.
"""

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _setup
from _setup import Row

SMALL = int(os.environ.get("BENCH_SMALL", "100000"))
LARGE = int(os.environ.get("BENCH_CUSTOMERS", "10000000"))
PARTS = (
    "agent",
    "audience",
    "report",
    "cockpit",
    "replica",
    "notices",
    "partition",
    "disposal",
)
CHOSEN = [
    part.strip()
    for part in os.environ.get("BENCH_SCALE_PARTS", ",".join(PARTS)).split(",")
    if part.strip()
]
# The notices read the customers and the incident's own rows, nothing of consent or
# the access log: a run of them alone loads the customers only (minutes, not an hour).
CUSTOMERS_ONLY = CHOSEN == ["notices"]
PURPOSE = "marketing_sms"
GRANTED_SHARE = 0.6
ASSIGNED = 50
POOL = 10_000  # customers the agents' cases are drawn from, at every size
AGENT_RUNS = 31
AUDIENCE_RUNS = 3
REPORT_RUNS = 3
COCKPIT_RUNS = 7
WRITERS = 4
WRITE_SECONDS = 15.0
WRITE_ROUNDS = 3
BATCH = 5_000
# The raw disposal statement is cancelled after this long (its time is then a floor:
# enough for "ours at most 1.5x" whenever ours is within 1.5x of the cap).
RAW_CAP_S = float(os.environ.get("BENCH_RAW_CAP_S", "1800"))
KEEP = os.environ.get("BENCH_SCALE_KEEP", "") == "1"
# The replica row with the standby and the reader on half the cores, the primary and
# the writers on the other half (`_replica.cores_split`).
REPLICA_PIN = os.environ.get("BENCH_REPLICA_PIN", "") == "1"
# `--dispose` only: stop our disposal after this many seconds (a partial measurement
# of its batches on a large database; the run is left unfinished).
_stop = os.environ.get("BENCH_DISPOSE_STOP_S")
DISPOSE_STOP_S = float(_stop) if _stop else None
CHILD_TIMEOUT = 6 * 3600

# Modes: no argument (the run), `--size N DB OUT` (one size), `--dispose DB OUT` (our
# disposal, measured in a process of its own), `--replica-read DB OUT` (the reader
# beside the writers), `--measure DB OUT` (the chosen parts on a kept database),
# `--print PATH` (the table of a saved run).
MODE = sys.argv[1] if len(sys.argv) > 1 else ""
if MODE in ("--size", "--dispose", "--replica-read", "--measure"):
    DB_NAME = _setup.configure_django(sys.argv[-2])
    from django.conf import settings

    # Production logs no queries; with DEBUG on Django keeps the text of each one.
    settings.DEBUG = False

START = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - START:8.1f} s] {message}", flush=True)


def want(part: str) -> bool:
    return part in CHOSEN


# Data


def months_loaded(now: datetime) -> list[datetime]:
    """The first instants of the 12 whole months before `now`'s, and of `now`'s
    (13 boundaries: month i runs from [i] to [i + 1])."""
    from apps.core.partitions import month_next, month_start

    first = month_start(now)
    for _ in range(12):
        first = month_start(first - timedelta(days=1))
    bounds = [first]
    while len(bounds) < 13:
        bounds.append(month_next(bounds[-1]))
    return bounds


def access_log_partitions_make(bounds: list[datetime]) -> None:
    """A partition for each loaded month (those before the migration's first)."""
    from apps.core.partitions import partition_month_create, table_is_partitioned

    table = "access_accesslogentry"
    if table_is_partitioned(table):
        for start in bounds[:-1]:
            partition_month_create(table, "created_at", start)


def scale_fill(count: int, phases: dict[str, float]) -> dict[str, Any]:
    """The data of the module's docstring. Returns the users and loaded months."""
    import random

    from _common import others_assign, own_history
    from django.db import connection

    from apps.access.models import InteractionKind
    from apps.access.services import interaction_open
    from apps.accounts.models import Role, User
    from apps.customers.models import Customer

    now = datetime.now(UTC)
    bounds = months_loaded(now)
    staff = User.objects.create(username="bench-staff", role=Role.SUPPORT_AGENT)
    admin = User.objects.create(username="bench-admin", role=Role.PRIVACY_ADMIN)
    agent = User.objects.create(username="bench-agent", role=Role.SUPPORT_AGENT)
    officer = User.objects.create(
        username="bench-officer", role=Role.COMPLIANCE_OFFICER
    )
    access_log_partitions_make(bounds)
    # The agents' customers through the service (keys and PII sealed): the list opens
    # them. The rest by SQL (random bytes for keys, no PII).
    phases["customers_sealed"] = _setup.customers_load(
        POOL, start=now - timedelta(days=400)
    )
    pool = list(Customer.objects.values_list("pk", flat=True))
    progress(
        f"{count:,}: {POOL:,} customers sealed in {phases['customers_sealed']:.1f} s"
    )
    customers = _setup.customers_fill_sql(
        count - POOL,
        columns={
            "status": "CASE WHEN n % 10 < 3 THEN 'closed' ELSE 'active' END",
            "created_at": "now() - (1750 + n % 1000) * interval '1 day' "
            "- n * interval '1 second'",
            "closed_at": "CASE WHEN n % 10 < 3 "
            "THEN now() - (731 + n % 1000) * interval '1 day' END",
            "last_activity_at": "CASE WHEN n % 10 < 3 "
            "THEN now() - (731 + n % 1000) * interval '1 day' "
            "ELSE now() - (n % 1000) * interval '1 day' END",
        },
    )
    events = (
        "INSERT INTO consent_consentevent (granted, notice_version, source, "
        "created_at, evidence_hash, actor_id, customer_id, purpose_id) "
        "SELECT random() < %s, 1, 'api', c.created_at + interval '1 day', '', NULL, "
        "c.id, p.id FROM customers_customer c CROSS JOIN consent_purpose p"
    )
    # One event per customer and purpose: the state is that event.
    state = (
        "INSERT INTO consent_consentstate (granted, notice_version, source, "
        "updated_at, last_event_id, customer_id, purpose_id) "
        "SELECT granted, notice_version, source, created_at, id, customer_id, "
        "purpose_id FROM consent_consentevent"
    )
    # Each customer's 3 rows in 3 months 4 apart (by a hash of its id), at a random
    # point of the month from its second day on.
    log = (
        "INSERT INTO access_accesslogentry (staff_id, staff_role, customer_id, "
        "fields, purpose, interaction_id, reveal_id, created_at) "
        "SELECT %s, %s, c.id, '{\"email\": \"masked\"}', 'support_case', NULL, NULL, "
        "b[1 + m] + interval '1 day' + random() * (b[2 + m] - b[1 + m] "
        "- interval '1 day') FROM (SELECT id, (abs(hashtext(id::text)) %% 12 + 4 * j) "
        "%% 12 AS m FROM customers_customer CROSS JOIN generate_series(0, 2) AS j) c, "
        "(SELECT %s::timestamptz[] AS b) bounds"
    )
    tables = (
        "crypto_datakey",
        "customers_customer",
        "consent_consentevent",
        "consent_consentstate",
        "access_accesslogentry",
    )
    with _setup.indexes_dropped(*tables):
        phases["customers"] = _setup.sql_load(
            ("SELECT setseed(0.42)", None), *customers
        )
        progress(f"{count:,}: customers loaded in {phases['customers']:.1f} s")
        if CUSTOMERS_ONLY:
            progress(f"{count:,}: no consent or access log (notices only)")
        else:
            phases["consent"] = _setup.sql_load((events, [GRANTED_SHARE]), state)
            progress(f"{count:,}: consent loaded in {phases['consent']:.1f} s")
            phases["access_log"] = _setup.sql_load(
                (log, [staff.pk, staff.role, bounds])
            )
            progress(f"{count:,}: access log loaded in {phases['access_log']:.1f} s")
        start = time.perf_counter()
    phases["indexes"] = time.perf_counter() - start
    progress(f"{count:,}: indexes built in {phases['indexes']:.1f} s")

    start = time.perf_counter()
    others_assign(admin=admin, customers=pool)
    own_history(admin=admin, agent=agent, customers=pool)
    rng = random.Random(3)
    assigned = rng.sample(pool, ASSIGNED)
    for customer in Customer.objects.filter(pk__in=assigned):
        interaction_open(
            actor=admin,
            staff=agent,
            customer=customer,
            kind=InteractionKind.SUPPORT_CASE,
        )
    phases["agents"] = time.perf_counter() - start

    start = time.perf_counter()
    rebuilt = counts_rebuild()
    phases["counts_rebuild"] = time.perf_counter() - start
    progress(
        f"{count:,}: agents in {phases['agents']:.1f} s; retention counts "
        + (f"rebuilt in {phases['counts_rebuild']:.1f} s" if rebuilt else rebuilt_not)
    )
    start = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    phases["vacuum"] = time.perf_counter() - start
    progress(f"{count:,}: VACUUM ANALYZE in {phases['vacuum']:.1f} s")
    return {
        "admin": admin,
        "agent": agent,
        "officer": officer,
        "bounds": bounds,
        "pool": pool,
        "assigned": assigned,
    }


rebuilt_not = "not rebuilt (no retention_counts_rebuild here)"


def counts_rebuild() -> bool:
    """The retention counts rebuilt from the rows, where the project keeps them."""
    from apps.retention import services

    rebuild = getattr(services, "retention_counts_rebuild", None)
    if rebuild is None:
        return False
    rebuild()
    return True


def database_facts() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        size = cursor.fetchone()[0]
        counts = {}
        for table in (
            "customers_customer",
            "consent_consentevent",
            "consent_consentstate",
            "access_accesslogentry",
        ):
            cursor.execute(f"SELECT count(*) FROM {table}")  # nosec B608 - fixed names
            counts[table] = cursor.fetchone()[0]
    return {"db_bytes": size, **counts}


# Measurements (each returns a dict of figures for the JSON)


def measure_agent(ctx: dict[str, Any]) -> dict[str, Any]:
    from _common import make_call

    from apps.access.api import CustomerListCreateApi

    call = make_call(ctx["agent"])
    view = CustomerListCreateApi.as_view()
    page = json.loads(call(view).content)["results"]
    assert len(page) == ASSIGNED, len(page)
    [seconds] = _setup.median_interleaved([lambda: call(view)], runs=AGENT_RUNS)
    return {"ms": seconds * 1e3}


def _audience_pass(chunks: Iterator[bytes]) -> tuple[int, int]:
    """Lines and an order-free checksum of the ids in a CSV or COPY stream."""
    lines = checksum = 0
    for chunk in chunks:
        for line in chunk.split(b"\n"):
            if line and line != b"customer_id":
                lines += 1
                checksum = (checksum + int(line[:8], 16)) % 2**64
    return lines, checksum


def audience_copy_sql(purpose_id: int) -> str:
    return (
        "COPY (SELECT s.customer_id FROM consent_consentstate s "
        f"WHERE s.purpose_id = {int(purpose_id)} AND s.granted) TO STDOUT"
    )


def measure_audience(ctx: dict[str, Any]) -> dict[str, Any]:
    from _common import audience_csv_via_api, copy_chunks

    from apps.consent.models import Purpose

    purpose = Purpose.objects.get(code=PURPOSE)
    raw_sql = audience_copy_sql(purpose.pk)

    def ours() -> int:
        return sum(
            map(len, audience_csv_via_api(user=ctx["admin"], purpose_code=PURPOSE))
        )

    def raw() -> int:
        return sum(map(len, copy_chunks(raw_sql)))

    # Both must name the same customers, or the comparison means nothing.
    ours_ids = _audience_pass(
        audience_csv_via_api(user=ctx["admin"], purpose_code=PURPOSE)
    )
    raw_ids = _audience_pass(copy_chunks(raw_sql))
    assert ours_ids == raw_ids, (ours_ids, raw_ids)
    ours_s, raw_s = _setup.median_interleaved([ours, raw], runs=AUDIENCE_RUNS)
    return {"ids": ours_ids[0], "ours_s": ours_s, "copy_s": raw_s}


def measure_report(ctx: dict[str, Any]) -> dict[str, Any]:
    from apps.retention.selectors import retention_report

    [seconds] = _setup.median_interleaved([retention_report], runs=REPORT_RUNS)
    return {"ms": seconds * 1e3}


def measure_cockpit(ctx: dict[str, Any]) -> dict[str, Any]:
    from _common import signed_in_client

    from apps.compliance.selectors import cockpit_get

    client = signed_in_client(ctx["officer"])

    def page() -> None:
        response = client.get("/compliance/")
        assert response.status_code == 200, response.status_code

    page_s, numbers_s = _setup.median_interleaved(
        [page, cockpit_get], runs=COCKPIT_RUNS
    )
    return {"page_ms": page_s * 1e3, "numbers_ms": numbers_s * 1e3}


# 4. The replica


def _cluster_bytes() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT sum(pg_database_size(datname)) FROM pg_database")
        return int(cursor.fetchone()[0])


def consent_writes(pool: list[Any], seconds: float) -> tuple[int, float]:
    """consent_record from WRITERS threads for `seconds`: (events, seconds)."""
    from apps.consent.models import Purpose
    from apps.consent.services import consent_record
    from apps.customers.models import Customer

    customers = list(Customer.objects.filter(pk__in=pool[:2_000]))
    codes = list(Purpose.objects.values_list("code", flat=True))

    def work(rng: Any, deadline: float) -> int:
        done = 0
        while time.perf_counter() < deadline:
            consent_record(
                actor=None,
                customer=rng.choice(customers),
                purpose_code=rng.choice(codes),
                granted=rng.random() < 0.5,
                source="api",
            )
            done += 1
        return done

    done, took, errors = _setup.threads_run(work, WRITERS, seconds)
    assert not errors, errors[:3]
    return done, took


def measure_replica(ctx: dict[str, Any]) -> dict[str, Any]:
    """Writes alone vs writes while a reader process streams from the standby."""
    import _replica

    if not _replica.replication_allowed():
        return {
            "skipped": "the primary refuses replication connections from 127.0.0.1 "
            "(bench/_replica.py, replication_allow_local, says what to add)"
        }
    needed = int(_cluster_bytes() * 1.2) + 2 * 2**30
    free = shutil.disk_usage("/").free
    if free < needed:
        return {
            "skipped": f"{free / 2**30:.0f} GB free, a copy of the cluster needs "
            f"about {needed / 2**30:.0f} GB"
        }
    from django.db import connections

    alone: list[float] = []
    beside: list[float] = []
    reads: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        replica_url = stack.enter_context(_replica.streaming_replica())
        caught_up_s = _replica.replica_caught_up(replica_url)
        progress(f"replica streaming, caught up in {caught_up_s:.1f} s")
        connections.close_all()
        reader_cores = (
            stack.enter_context(_replica.cores_split(_replica.PRIMARY_URL, replica_url))
            if REPLICA_PIN
            else None
        )
        env = {**os.environ, "DATABASE_REPLICA_URL": f"{replica_url}/{DB_NAME}"}
        for _ in range(WRITE_ROUNDS):
            done, took = consent_writes(ctx["pool"], WRITE_SECONDS)
            alone.append(done / took)
            out = Path(_setup.checkpoint_dir().parent) / f"{DB_NAME}.replica-read.json"
            reader = subprocess.Popen(  # noqa: S603 - this very file, our own database
                [sys.executable, __file__, "--replica-read", DB_NAME, str(out)],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            try:
                if reader_cores:
                    os.sched_setaffinity(reader.pid, reader_cores)
                assert reader.stdout is not None
                started = reader.stdout.readline().strip() == "reading"
                assert started, "reader did not start"
                done, took = consent_writes(ctx["pool"], WRITE_SECONDS)
                beside.append(done / took)
            finally:
                reader.terminate()
                reader.wait(timeout=600)
            reads.append(json.loads(out.read_text()))
            out.unlink()
    return {
        "alone_per_s": statistics.median(alone),
        "beside_per_s": statistics.median(beside),
        "audience_s": statistics.median(
            r["audience_s"] for r in reads if r["audience_s"]
        ),
        "report_ms": statistics.median(r["report_ms"] for r in reads if r["report_ms"]),
        "on_replica": all(r["on_replica"] for r in reads),
        "rounds": WRITE_ROUNDS,
        "pinned": REPLICA_PIN,
    }


def replica_read_main(out: Path) -> None:
    """The reader: audience stream and report through `replica_reads()` in a loop until
    terminated; writes its timings to `out` after every pass."""
    import signal

    from _common import audience_csv_via_api

    from apps.accounts.models import User
    from apps.core.replica import replica_reads
    from apps.retention.selectors import retention_report

    admin = User.objects.get(username="bench-admin")
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    audience: list[float] = []
    report: list[float] = []
    on_replica = True
    print("reading", flush=True)
    while not stop[0]:
        with replica_reads() as alias:
            on_replica = on_replica and alias == "replica"
            start = time.perf_counter()
            for _ in audience_csv_via_api(user=admin, purpose_code=PURPOSE):
                if stop[0]:
                    break
            else:
                audience.append(time.perf_counter() - start)
            if stop[0]:
                break
            start = time.perf_counter()
            retention_report()
            report.append((time.perf_counter() - start) * 1e3)
        out.write_text(
            json.dumps(
                {
                    "audience_s": statistics.median(audience) if audience else None,
                    "report_ms": statistics.median(report) if report else None,
                    "on_replica": on_replica,
                }
            )
        )
    if not out.exists():
        out.write_text(
            json.dumps(
                {"audience_s": None, "report_ms": None, "on_replica": on_replica}
            )
        )


# 5. Breach notices


def measure_notices(ctx: dict[str, Any]) -> dict[str, Any]:
    import _notices

    return _notices.notices_measure(admin=ctx["admin"])


# 6. Access-log retention by partition


def _partition_of(moment: datetime) -> str | None:
    from django.db import connection

    from apps.core.partitions import partition_name

    name = partition_name("access_accesslogentry", moment)
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [name])
        return name if cursor.fetchone()[0] is not None else None


def _rows_between(start: datetime, end: datetime) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM access_accesslogentry "
            "WHERE created_at >= %s AND created_at < %s",
            [start, end],
        )
        return cursor.fetchone()[0]


def measure_partition(ctx: dict[str, Any]) -> dict[str, Any]:
    """The oldest loaded month by our disposal run, the next by a batched DELETE, the
    one after by DROP TABLE."""
    from django.db import connection, transaction
    from django.utils import timezone

    from apps.retention import services
    from apps.retention.models import RetentionPolicy

    bounds = ctx["bounds"]
    if _partition_of(bounds[0]) is None:
        return {"skipped": "the access log is not partitioned by month here"}
    # Due: every row before the second month's first day (its rows start a day in).
    period = (timezone.now() - bounds[1]).days
    RetentionPolicy.objects.exclude(code="access-log").update(enabled=False)
    RetentionPolicy.objects.filter(code="access-log").update(
        enabled=True, period_days=period, action="delete"
    )
    rows = [_rows_between(bounds[i], bounds[i + 1]) for i in range(3)]
    start = time.perf_counter()
    services.purge_run(actor=None, batch_size=BATCH)
    ours_s = time.perf_counter() - start
    assert _rows_between(bounds[0], bounds[1]) == 0
    dropped = _partition_of(bounds[0]) is None

    start = time.perf_counter()
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM access_accesslogentry WHERE (id, created_at) IN "
                "(SELECT id, created_at FROM access_accesslogentry "
                "WHERE created_at >= %s AND created_at < %s LIMIT %s)",
                [bounds[1], bounds[2], BATCH],
            )
            if cursor.rowcount == 0:
                break
    naive_s = time.perf_counter() - start

    name = _partition_of(bounds[2])
    assert name is not None
    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f'DROP TABLE "{name}"')
    raw_s = time.perf_counter() - start
    return {
        "rows": rows,
        "ours_s": ours_s,
        "naive_s": naive_s,
        "raw_s": raw_s,
        "partition_dropped": dropped,
    }


# 7. Disposal


def disposal_policies_set() -> None:
    """closed-accounts set to delete, the other policies off."""
    from apps.retention.models import RetentionPolicy

    RetentionPolicy.objects.filter(code="closed-accounts").update(
        enabled=True, action="delete"
    )
    RetentionPolicy.objects.exclude(code="closed-accounts").update(enabled=False)


def measure_disposal(ctx: dict[str, Any]) -> dict[str, Any]:
    from _common import RawCapped, dispose_raw
    from django.db import connection, connections

    from apps.customers.models import Customer
    from apps.retention.models import RetentionPolicy
    from apps.retention.selectors import disposable

    disposal_policies_set()
    due = disposable(RetentionPolicy.objects.get(code="closed-accounts")).count()
    before = Customer.objects.count()
    try:
        raw_s, raw_capped = dispose_raw(rollback=True, cap_s=RAW_CAP_S), False
    except RawCapped as capped:
        raw_s, raw_capped = capped.seconds, True
    assert Customer.objects.count() == before
    progress(
        f"disposal: raw statement {'cancelled after ' if raw_capped else ''}"
        f"{raw_s:.1f} s (rolled back); VACUUM"
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    connections.close_all()
    out = Path(_setup.checkpoint_dir().parent) / f"{DB_NAME}.dispose.json"
    child = subprocess.run(  # noqa: S603 - this very file, on our own database
        [sys.executable, __file__, "--dispose", DB_NAME, str(out)],
        timeout=CHILD_TIMEOUT,
        check=False,
        # The whole disposal: a stop is for `--dispose` run by hand.
        env={k: v for k, v in os.environ.items() if k != "BENCH_DISPOSE_STOP_S"},
    )
    if child.returncode != 0:
        raise RuntimeError(f"disposal child failed ({child.returncode})")
    ours = json.loads(out.read_text())
    out.unlink()
    assert ours["customers_left"] == before - due, (ours, before, due)
    assert ours["logged"] >= due, (ours, due)
    return {"due": due, "raw_s": raw_s, "raw_capped": raw_capped, **ours}


def dispose_main(out: Path) -> None:
    from _common import RunStopped, purge_run_timed
    from django.db import connection

    from apps.customers.models import Customer
    from apps.retention.models import DisposalLogEntry

    disposal_policies_set()  # as the run set them (`--dispose` alone too)
    connection.ensure_connection()
    base_mb = _setup.proc_status_mb("VmRSS")
    _setup.peak_rss_reset()
    overruns: list[int] = []
    start = time.perf_counter()
    try:
        longest = purge_run_timed(
            batch_size=BATCH, stop_after=DISPOSE_STOP_S, overruns=overruns
        )
        stopped = False
    except RunStopped as stop:
        longest, stopped = stop.args[0], True
    seconds = time.perf_counter() - start
    peak_mb = _setup.proc_status_mb("VmHWM")
    out.write_text(
        json.dumps(
            {
                "ours_s": seconds,
                "stopped": stopped,
                "longest_s": longest,
                "overruns": len(overruns),
                "base_mb": base_mb,
                "peak_mb": peak_mb,
                "customers_left": Customer.objects.count(),
                "logged": DisposalLogEntry.objects.count(),
            }
        )
    )


MEASURES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "agent": measure_agent,
    "audience": measure_audience,
    "report": measure_report,
    "cockpit": measure_cockpit,
    "replica": measure_replica,
    "notices": measure_notices,
    "partition": measure_partition,
    "disposal": measure_disposal,
}


def size_main(count: int, out: Path) -> None:
    """Build, measure and drop one size; the results go to `out` (JSON) as they come."""
    result: dict[str, Any] = {"customers": count, "phases": {}, "parts": {}}

    def save() -> None:
        out.write_text(json.dumps(result, indent=1, default=str))

    with _setup.bench_database(DB_NAME, keep=KEEP):
        result["machine"] = _setup.machine_context()
        progress(f"{count:,}: database {DB_NAME}, loading")
        start = time.perf_counter()
        ctx = scale_fill(count, result["phases"])
        result["phases"]["load_total"] = time.perf_counter() - start
        if CUSTOMERS_ONLY:
            result["load"] = "customers only"
        result.update(database_facts())
        progress(
            f"{count:,}: loaded in {result['phases']['load_total']:.1f} s; database "
            f"{result['db_bytes'] / 2**30:.2f} GiB; "
            f"{result['access_accesslogentry']:,} access-log rows, "
            f"{result['consent_consentevent']:,} consent events"
        )
        save()
        parts_measure(ctx, count, result, save)
    if KEEP:
        progress(f"{count:,}: database {DB_NAME} kept")


def parts_measure(
    ctx: dict[str, Any], count: int, result: dict[str, Any], save: Callable[[], None]
) -> None:
    """The chosen measurements, in the module's order, each saved as it ends."""
    from django.db import connections

    for part in PARTS:
        if not want(part):
            continue
        if part == "replica" and count < LARGE:
            # Its goal is at N; a copy of the cluster costs minutes.
            result["parts"][part] = {"skipped": "measured at the large size only"}
            continue
        progress(f"{count:,}: {part}")
        start = time.perf_counter()
        try:
            result["parts"][part] = MEASURES[part](ctx)
        except Exception as exc:  # recorded; the other parts still run
            traceback.print_exc()
            result["parts"][part] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
            result["error"] = f"{part} failed"
            connections.close_all()
        result["phases"][part] = time.perf_counter() - start
        progress(
            f"{count:,}: {part} done in {result['phases'][part]:.1f} s: "
            + json.dumps(result["parts"][part], default=str)
        )
        save()


def measure_main(out: Path) -> None:
    """The chosen parts on a database a run kept (`BENCH_SCALE_KEEP`); its users are
    read back from it, its months are this month's (`months_loaded`: measure in the
    month it was loaded). The database stays, changed by the parts that change it
    (partition, disposal, notices)."""
    from apps.access.models import Interaction
    from apps.accounts.models import User
    from apps.consent.models import ConsentEvent
    from apps.customers.models import Customer

    users = {
        name: User.objects.get(username=f"bench-{name}")
        for name in ("admin", "agent", "officer")
    }
    ctx: dict[str, Any] = {
        **users,
        "bounds": months_loaded(datetime.now(UTC)),
        "pool": list(
            Customer.objects.order_by("-created_at").values_list("pk", flat=True)[:POOL]
        ),
        "assigned": list(
            Interaction.objects.filter(
                staff=users["agent"], closed_at__isnull=True
            ).values_list("customer_id", flat=True)
        ),
    }
    count = Customer.objects.count()
    result: dict[str, Any] = {"customers": count, "phases": {}, "parts": {}}
    result["machine"] = _setup.machine_context()
    if not CUSTOMERS_ONLY and not ConsentEvent.objects.exists():
        sys.exit(
            "scale.py --measure: this database holds the customers only (loaded for "
            "the notices alone): measure only BENCH_SCALE_PARTS=notices on it"
        )
    parts_measure(
        ctx,
        count,
        result,
        lambda: out.write_text(json.dumps(result, indent=1, default=str)),
    )


# The run and its table


def _size_run(count: int, parent: int) -> dict[str, Any]:
    name = f"amanah_scale_{parent}_{count}"
    out = Path(_setup.checkpoint_dir().parent) / f"{name}.json"
    child = subprocess.run(  # noqa: S603 - this very file
        [sys.executable, __file__, "--size", str(count), name, str(out)],
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    result = json.loads(out.read_text()) if out.exists() else {"customers": count}
    out.unlink(missing_ok=True)
    if child.returncode != 0:
        result["error"] = f"exit status {child.returncode}"
    return result


def _part(result: dict[str, Any], name: str) -> dict[str, Any] | None:
    found = result.get("parts", {}).get(name)
    return None if found is None or {"skipped", "error"} & set(found) else found


def table_rows(small: dict[str, Any], large: dict[str, Any]) -> list[Row]:
    """The table: at N, with the figure at the small size beside it where the goal
    compares the two."""
    n, s = large["customers"], small["customers"]
    at_small = f"at {s:,}:"
    rows: list[Row] = []
    agent_s, agent_l = _part(small, "agent"), _part(large, "agent")
    if agent_l:
        rows.append(
            Row(
                f"agent's list, {ASSIGNED} assigned, {n:,} customers (ms)",
                agent_l["ms"],
                agent_s["ms"] if agent_s else None,
                None,
                goal=f"≤1.2x at {s:,}",
                ok=bool(agent_s) and agent_l["ms"] <= 1.2 * agent_s["ms"],
                naive_label=at_small,
                fmt="{:.1f}",
            )
        )
    for result in (small, large):
        audience = _part(result, "audience")
        if audience:
            rows.append(
                Row(
                    f"audience CSV, {audience['ids']:,} ids of "
                    f"{result['customers']:,} (s)",
                    audience["ours_s"],
                    None,
                    audience["copy_s"],
                    goal="≤1.5x COPY",
                    ok=audience["ours_s"] <= 1.5 * audience["copy_s"],
                    raw_label="COPY",
                    fmt="{:.2f}",
                )
            )
    for result in (small, large):
        disposal = _part(result, "disposal")
        if disposal:
            capped = disposal.get("raw_capped", False)
            rows += [
                Row(
                    f"dispose {disposal['due']:,} of {result['customers']:,} (s)",
                    disposal["ours_s"],
                    None,
                    disposal["raw_s"],
                    goal="≤1.5x SQL",
                    # Cancelled, the statement's time is a floor: ours within 1.5x
                    # of the floor is within 1.5x of the statement; beyond it, not
                    # known.
                    ok=True
                    if disposal["ours_s"] <= 1.5 * disposal["raw_s"]
                    else None
                    if capped
                    else False,
                    raw_label="SQL >" if capped else "SQL",
                    raw_floor=capped,
                    fmt="{:.1f}",
                ),
                Row(
                    "  peak resident memory (MB)",
                    disposal["peak_mb"],
                    None,
                    None,
                    goal="<150 MB",
                    ok=disposal["peak_mb"] < 150,
                    fmt="{:.0f}",
                ),
                Row(
                    "  longest transaction (s)"
                    + (
                        f"; {disposal['overruns']:,} rolled back, over their time"
                        if disposal.get("overruns")
                        else ""
                    ),
                    disposal["longest_s"],
                    None,
                    None,
                    goal="≤2 s",
                    ok=disposal["longest_s"] <= 2.0,
                    fmt="{:.2f}",
                ),
            ]
    for result in (small, large):
        part = _part(result, "partition")
        if part:
            rows.append(
                Row(
                    f"access log, one month of {result['customers']:,}: "
                    f"{part['rows'][0]:,} rows (s)",
                    part["ours_s"],
                    part["naive_s"],
                    part["raw_s"],
                    goal="<1 s",
                    ok=part["ours_s"] < 1.0,
                    naive_label="DELETE",
                    raw_label="DROP",
                    fmt="{:.2f}",
                )
            )
    report_s, report_l = _part(small, "report"), _part(large, "report")
    if report_l:
        rows.append(
            Row(
                f"retention report, {n:,} customers (ms)",
                report_l["ms"],
                report_s["ms"] if report_s else None,
                None,
                goal="<1 s",
                ok=report_l["ms"] < 1000,
                naive_label=at_small,
                fmt="{:.0f}",
            )
        )
    cockpit_s, cockpit_l = _part(small, "cockpit"), _part(large, "cockpit")
    if cockpit_l:
        for key, label in (("page_ms", "cockpit page"), ("numbers_ms", "cockpit_get")):
            rows.append(
                Row(
                    f"{label}, {n:,} customers (ms)",
                    cockpit_l[key],
                    cockpit_s[key] if cockpit_s else None,
                    None,
                    goal="<200 ms",
                    ok=cockpit_l[key] < 200,
                    naive_label=at_small,
                    fmt="{:.0f}",
                )
            )
    notices_s, notices_l = _part(small, "notices"), _part(large, "notices")
    if notices_l:
        rows.append(
            Row(
                f"notices for {notices_l.get('people', n):,} people, peak (MB)",
                notices_l["peak_mb"],
                notices_s["peak_mb"] if notices_s else None,
                None,
                goal=f"≤1.2x at {s:,}",
                ok=bool(notices_s)
                and notices_l["peak_mb"] <= 1.2 * notices_s["peak_mb"],
                naive_label=at_small,
                fmt="{:.1f}",
            )
        )
    replica = _part(large, "replica")
    if replica:
        rows += [
            Row(
                f"primary writes beside replica reads, {n:,}"
                + (", cores split" if replica.get("pinned") else "")
                + " (events/s)",
                replica["beside_per_s"],
                replica["alone_per_s"],
                None,
                goal="≤1.2x alone",
                ok=replica["alone_per_s"] <= 1.2 * replica["beside_per_s"]
                and replica["on_replica"],
                naive_label="alone:",
                fmt="{:,.0f}",
                higher_is_better=True,
            ),
            Row(
                "  audience CSV from the replica (s)",
                replica["audience_s"],
                None,
                _part(large, "audience")["ours_s"]
                if _part(large, "audience")
                else None,
                goal="-",
                ok=None,
                raw_label="primary:",
                fmt="{:.2f}",
            ),
            Row(
                "  retention report from the replica (ms)",
                replica["report_ms"],
                None,
                report_l["ms"] if report_l else None,
                goal="-",
                ok=None,
                raw_label="primary:",
                fmt="{:.0f}",
            ),
        ]
    return rows


def saved_read(paths: list[Path]) -> dict[str, Any]:
    """The figures of a whole run and of any `--measure` outputs after it, in that
    order: a `--measure` output holds one size (its database's customers at the
    start, `BENCH_SMALL` or fewer for the small one) and its parts replace that size's
    parts of the same name."""
    saved: dict[str, Any] = {
        "small": {"customers": SMALL},
        "large": {"customers": LARGE},
    }
    for path in paths:
        found = json.loads(path.read_text())
        if "customers" not in found:
            saved = {key: found.get(key, saved[key]) for key in saved}
            continue
        key = "small" if found["customers"] <= SMALL else "large"
        earlier = saved[key]
        saved[key] = {
            **earlier,
            **found,
            "phases": {**earlier.get("phases", {}), **found.get("phases", {})},
            "parts": {**earlier.get("parts", {}), **found.get("parts", {})},
        }
    return saved


def report_print(saved: dict[str, Any]) -> None:
    small, large = saved["small"], saved["large"]
    print()
    print(large.get("machine") or small.get("machine", ""))
    for result in (small, large):
        phases = ", ".join(
            f"{name} {seconds:.0f} s"
            for name, seconds in result.get("phases", {}).items()
        )
        size = result.get("db_bytes")
        print(
            f"{result['customers']:,} customers: database "
            + (f"{size / 2**30:.2f} GiB" if size else "?")
            + (f" ({result['load']})" if result.get("load") else "")
            + f"; phases: {phases or '-'}"
            + (f"; ERROR: {result['error']}" if result.get("error") else "")
        )
        for name, part in result.get("parts", {}).items():
            if "skipped" in part:
                print(f"  {name}: skipped, {part['skipped']}")
            if "error" in part:
                print(f"  {name}: ERROR, {part['error']}")
    print()
    print(
        "Columns: 'ours' at the size named; 'naive/plain' holds the same figure at the"
        " small size (at ...:), the naive way (DELETE) or the writes alone (alone:)."
    )
    _setup.print_table(table_rows(small, large))


def main() -> None:
    parent = os.getpid()
    path = Path(
        os.environ.get("BENCH_SCALE_JSON")
        or _setup.ROOT / "bench" / "results" / f"scale-{parent}.json"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    saved: dict[str, Any] = {
        "small": {"customers": SMALL},
        "large": {"customers": LARGE},
    }
    failed = False
    for key, count in (("small", SMALL), ("large", LARGE)):
        progress(f"size {count:,} ({key})")
        saved[key] = _size_run(count, parent)
        path.write_text(json.dumps(saved, indent=1))
        failed = failed or "error" in saved[key]
    report_print(saved)
    print(f"results: {path}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    if MODE == "--size":
        size_main(int(sys.argv[2]), Path(sys.argv[4]))
    elif MODE == "--dispose":
        dispose_main(Path(sys.argv[3]))
    elif MODE == "--measure":
        measure_main(Path(sys.argv[3]))
    elif MODE == "--replica-read":
        replica_read_main(Path(sys.argv[3]))
    elif MODE == "--print":
        report_print(saved_read([Path(arg) for arg in sys.argv[2:]]))
    else:
        main()
