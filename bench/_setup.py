"""Shared scaffolding for `bench/*.py`: Django on a throwaway PostgreSQL database,
bench customers, timing helpers and the comparison table.

A benchmark calls `configure_django()` before importing any model, then runs inside
`with bench_database(name):`, which creates that database, migrates it and drops it (and
only it) at the end. Fixed bench keys keep the developer's `.dev-secrets.env` and
database out of it. Running this file directly does nothing.
"""

import base64
import gc
import os
import platform
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
SERVER_URL = "postgres://postgres@127.0.0.1:5432"

# `python bench/x.py` puts bench/ on sys.path, not the project root that holds apps/.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _fixed_key(label: bytes) -> str:
    """A base64 256-bit key, the same in every run: bench data is not secret."""
    return base64.b64encode(label.ljust(32, b".")[:32]).decode()


def checkpoint_dir() -> Path:
    """Where bench and soak runs write audit checkpoints: not the developer's."""
    path = Path(tempfile.gettempdir()) / "amanah-bench-checkpoints"
    path.mkdir(exist_ok=True)
    return path


def erasure_journal_path(name: str) -> Path:
    """The erasure journal of bench database `name`, a file of its own."""
    return Path(tempfile.gettempdir()) / f"{name}.erasure-journal.jsonl"


def configure_django(name: str | None = None) -> str:
    """Point Django at a per-process bench database and set it up. Returns its name.

    Must run before any model is imported. Nothing connects until the database exists.
    A child process measuring on its parent's database passes that database's `name`.
    """
    name = name or f"amanah_bench_{os.getpid()}"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DJANGO_DEBUG="1",
        # "testserver": the host of Django's and DRF's test clients and factories.
        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        DATABASE_URL=f"{SERVER_URL}/{name}",
        DJANGO_SECRET_KEY=_fixed_key(b"amanah-bench-django-secret-key"),
        AMANAH_MASTER_KEYS="1:" + _fixed_key(b"amanah-bench-master-key-v1"),
        AMANAH_BLIND_INDEX_KEY=_fixed_key(b"amanah-bench-blind-index-key"),
        # Erasures append here, not to the developer's journal (`bench_database`
        # removes it).
        AMANAH_ERASURE_JOURNAL=str(erasure_journal_path(name)),
        AMANAH_SIGNING_KEY=_fixed_key(b"amanah-bench-signing-key"),
        AMANAH_AUDIT_CHECKPOINT_DIR=str(checkpoint_dir()),
        # Services log one INFO line per batch; the table is the output.
        DJANGO_LOG_LEVEL="WARNING",
    )
    import django

    django.setup()
    return name


def _server_connection() -> psycopg.Connection:
    return psycopg.connect(f"{SERVER_URL}/postgres", autocommit=True, connect_timeout=5)


@contextmanager
def bench_database(name: str, *, keep: bool = False) -> Iterator[None]:
    """Create database `name`, migrate it, and drop it when the block ends, however
    it ends (`keep`: not when the block ends normally). Exits with status 1 and one
    line when PostgreSQL does not answer."""
    from django.core.management import call_command
    from django.db import connections

    try:
        with _server_connection() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "no answer"
        print(f"PostgreSQL at {SERVER_URL} does not answer: {reason}", file=sys.stderr)
        sys.exit(1)
    # SIGTERM (a killed `make`) would skip `finally`; turn it into SystemExit.
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    kept = False
    try:
        call_command("migrate", verbosity=0, interactive=False)
        yield
        kept = keep
    finally:
        connections.close_all()
        if not kept:
            _database_drop(name)
        signal.signal(signal.SIGTERM, previous)


def _database_drop(name: str) -> None:
    with _server_connection() as conn:
        # FORCE: a connection left open by a crash must not keep the database alive.
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )
    erasure_journal_path(name).unlink(missing_ok=True)


def database_clone(template: str, name: str) -> None:
    """Create database `name` as a file copy of `template` (PostgreSQL 15+: faster than
    WAL-logging a large one), dropping any earlier `name` first. Nothing may be
    connected to either; the caller created both, and drops `name` when done."""
    database_drop(name)
    with _server_connection() as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        )


def database_drop(name: str) -> None:
    """Drop database `name`, which the caller created, if it exists."""
    with _server_connection() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)
            )
        )


def vacuum_analyze(*tables: str) -> None:
    """Fresh statistics and visibility maps: plans must not hang on autovacuum."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f'VACUUM ANALYZE "{table}"')


@contextmanager
def indexes_dropped(*tables: str) -> Iterator[None]:
    """Drop the secondary indexes of `tables` (not those behind a primary key or unique
    constraint) and build them again when the block ends: a bulk load runs several
    times faster without them, and a fresh index is as compact as after a REINDEX."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) "
            "FROM pg_index i WHERE i.indrelid = ANY(%s::regclass[]) AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
            [list(tables)],
        )
        indexes = cursor.fetchall()
        for name, _ in indexes:
            cursor.execute(f"DROP INDEX {name}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '256MB'")
            for _, definition in indexes:
                # A partitioned table's index reads "ON ONLY" it: made so, it would
                # cover none of its partitions (and stay invalid).
                cursor.execute(definition.replace(" ON ONLY ", " ON ", 1))
            cursor.execute("RESET maintenance_work_mem")


def sql_load(*statements: str | tuple[str, Sequence[Any]]) -> float:
    """Run bulk-load statements in one transaction with triggers off (foreign-key
    checks, the consent ledger's guard): bench rows are consistent by construction,
    and checking millions of references one by one takes longer than writing them.
    Returns the seconds it took."""
    from django.db import connection, transaction

    start = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SET LOCAL work_mem = '256MB'")
        for statement in statements:
            query, params = (
                (statement, None) if isinstance(statement, str) else statement
            )
            cursor.execute(query, params)
    return time.perf_counter() - start


# Every customers_customer column `customers_fill` sets, as SQL over `n` (1..count).
CUSTOMER_DEFAULTS = {
    "status": "'active'",
    "country": "'ID'",
    "region": "''",
    "created_at": "now() - n * interval '1 minute'",
    "last_activity_at": "now() - n * interval '1 minute'",
    "closed_at": "NULL",
    "erased_at": "NULL",
}


def customers_fill_sql(
    count: int, *, columns: dict[str, str] | None = None
) -> list[str | tuple[str, list[Any]]]:
    """Statements for `sql_load` inserting `count` customers with one data key each
    (61 random bytes stand in for a wrapped key), PII columns and blind indexes NULL:
    for benchmarks that measure what happens around the customers, not the crypto.

    `columns` overrides `CUSTOMER_DEFAULTS` with SQL expressions over `n`, the
    customer's number from 1 to `count` (bench code only, never user input);
    `updated_at` is the latest of the row's times unless given.
    """
    plain = {**CUSTOMER_DEFAULTS, **(columns or {})}
    # As migration customers 0003 back-fills it: the row's latest time.
    plain.setdefault(
        "updated_at",
        "GREATEST("
        + ", ".join(
            f"({plain[name]})"
            for name in ("created_at", "last_activity_at", "closed_at", "erased_at")
        )
        + ")",
    )
    names = ", ".join(plain)
    values = ", ".join(f"({expression})" for expression in plain.values())
    return [
        (
            "CREATE TEMP TABLE bench_fill ON COMMIT DROP AS "
            "SELECT n, gen_random_uuid() AS id, gen_random_uuid() AS key_id "
            "FROM generate_series(1, %s) AS n",
            [count],
        ),
        "INSERT INTO crypto_datakey (id, wrapped_key, kek_version, created_at) "
        "SELECT key_id, substring(sha512(int8send(n)) FROM 1 FOR 61), 1, now() "
        "FROM bench_fill",
        # No parameters: the expressions may hold a `%` (modulo).
        f"INSERT INTO customers_customer (id, data_key_id, {names}) "
        f"SELECT id, key_id, {values} FROM bench_fill ORDER BY n",
    ]


# Data


def customer_rows(count: int, *, start: datetime) -> Iterator[dict[str, Any]]:
    """Valid customers with 6 PII fields each, created one second apart from `start`."""
    for i in range(count):
        at = start + timedelta(seconds=i)
        yield {
            "country": "ID",
            "full_name": f"Bench Customer {i:06d}",
            "email": f"customer{i:06d}@bench.example",
            "phone": f"+62812{i:07d}",  # Indonesian mobile numbers, valid E.164.
            "address_line": f"Jl. Benchmark {i}",
            "city": "Jakarta",
            "national_id": f"NIK-{i:08d}",  # letters: never mistaken for a card number
            "created_at": at,
            "last_activity_at": at,
        }


def customers_load(count: int, *, start: datetime, batch_size: int = 5_000) -> float:
    """Insert `count` customers from `customer_rows` through the service (one data key
    each, PII sealed). Returns the seconds it took."""
    from apps.customers.services import customers_bulk_create

    return time_once(
        lambda: customers_bulk_create(
            rows=customer_rows(count, start=start), batch_size=batch_size
        )
    )


def machine_context() -> str:
    """Cores, CPU (with AES-NI, which AES-GCM speed hinges on), Python, PostgreSQL."""
    import cryptography
    import django
    from django.db import connection

    cpu, aes = platform.processor() or platform.machine(), "?"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        text = cpuinfo.read_text()
        for line in text.splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
        aes = "yes" if " aes" in text else "no"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
    return (
        f"machine: {os.cpu_count()} cores, {cpu}, AES-NI {aes}; "
        f"Python {platform.python_version()}, Django {django.get_version()}, "
        f"cryptography {cryptography.__version__}, PostgreSQL {pg_version}"
    )


# Timing


def best_of(func: Callable[[], object], *, number: int, repeat: int = 3) -> float:
    """Seconds per call, best of `repeat` loops of `number` calls (timeit's rule: the
    minimum is the run least disturbed by the rest of the machine)."""
    return min(timeit.repeat(func, number=number, repeat=repeat)) / number


def time_once(func: Callable[[], object]) -> float:
    """Seconds one call takes."""
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def threads_run(
    work: Callable[[random.Random, float], int], threads: int, seconds: float
) -> tuple[int, float, list[BaseException]]:
    """Run `work(rng, deadline)` in `threads` threads, each on its own database
    connection, started together, until `deadline` (`time.perf_counter()`). Returns
    the sum of what they return (operations done), the seconds taken, the errors."""
    from django.db import connection

    barrier = threading.Barrier(threads + 1)
    counts = [0] * threads
    errors: list[BaseException] = []
    deadline = [0.0]

    def run(writer: int) -> None:
        rng = random.Random(100 + writer)
        try:
            barrier.wait()
            counts[writer] = work(rng, deadline[0])
        except BaseException as exc:  # reported below: a thread must not die silently
            errors.append(exc)
        finally:
            connection.close()

    started = [threading.Thread(target=run, args=(w,)) for w in range(threads)]
    for thread in started:
        thread.start()
    deadline[0] = time.perf_counter() + seconds
    start = time.perf_counter()
    barrier.wait()
    for thread in started:
        thread.join()
    return sum(counts), time.perf_counter() - start, errors


def proc_status_mb(field: str) -> float:
    """A memory figure of this process from /proc (Linux), in MB: "VmRSS" now,
    "VmHWM" its peak since start or since `peak_rss_reset`."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def peak_rss_reset() -> None:
    """Start the peak resident size (VmHWM) afresh, so that Django's start-up does not
    count in what is measured next (Linux 4.0+)."""
    Path("/proc/self/clear_refs").write_text("5")


@contextmanager
def resident_split(every_s: float = 0.01) -> Iterator[dict[str, float]]:
    """The peak growth (MB) of each kind of this process's resident memory while the
    block runs, sampled every `every_s` on a thread of its own (/proc keeps no peak
    of either): {"anon_mb": heap and other private memory, what work done can grow;
    "file_mb": pages of mapped files, mostly the code of Python and its libraries,
    which a process forked from another faults in again as it first runs them}.
    The two peaks may fall at different moments. The thread has started and taken
    its first sample when the block begins: measure the block's own base inside it.
    Filled in when the block ends; raises what the sampling raised."""
    fields = {"anon_mb": "RssAnon", "file_mb": "RssFile"}
    top: dict[str, float] = {}
    base: dict[str, float] = {}
    failed: list[BaseException] = []
    started, done = threading.Event(), threading.Event()

    def sample() -> None:
        try:
            while True:
                for key, field in fields.items():
                    figure = proc_status_mb(field)
                    base.setdefault(key, figure)
                    top[key] = max(top.get(key, figure), figure)
                started.set()
                if done.wait(every_s):
                    return
        except BaseException as exc:
            failed.append(exc)
            started.set()

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started.wait()
    split: dict[str, float] = {}
    try:
        yield split
    finally:
        done.set()
        sampler.join()
    if failed:
        raise failed[0]
    split.update({key: top[key] - base[key] for key in fields})


def median_interleaved(
    funcs: Sequence[Callable[[], object]],
    *,
    runs: int,
    warmup: int = 1,
    before: Sequence[Callable[[], object]] | None = None,
) -> list[float]:
    """Median seconds per call of each function, calling them in turn on every round so
    drift (autovacuum, CPU frequency, caches) lands on all of them alike.

    As in timeit, the garbage collector is off while calls are timed; it runs between
    rounds instead. A full collection costs what the whole process holds (tens of ms
    here) and falls on whichever call crosses its threshold, the same one each round,
    which would swing a ratio by half.

    Each round starts with the next function in turn: the first call after a
    collection runs with cold CPU caches (about 1 ms slower for a 3 ms call here), and
    always putting the same function first would charge that to it alone.

    `before[i]`, if given, runs untimed right before every call of `funcs[i]` (to put
    in place the state that call measures).
    """
    setups = before or [lambda: None for _ in funcs]
    for _ in range(warmup):
        for setup, func in zip(setups, funcs, strict=True):
            setup()
            func()
    samples: list[list[float]] = [[] for _ in funcs]
    enabled = gc.isenabled()
    gc.disable()
    try:
        for round_ in range(runs):
            gc.collect()
            for step in range(len(funcs)):
                i = (round_ + step) % len(funcs)
                setups[i]()
                samples[i].append(time_once(funcs[i]))
    finally:
        if enabled:
            gc.enable()
    return [statistics.median(sample) for sample in samples]


# The table


@dataclass(frozen=True)
class Row:
    """One measurement: our path, the naive way and the raw limit, in one unit.

    `higher_is_better` marks throughputs (keys/s); ratios are then inverted so that in
    every row a ratio above 1 means ours costs that many times more. A row without a
    goal of its own (`ok=None`) is there to explain another.
    """

    measurement: str
    ours: float
    naive: float | None
    raw: float | None
    goal: str
    ok: bool | None
    naive_label: str = ""
    raw_label: str = ""
    fmt: str = "{:.1f}"
    higher_is_better: bool = False
    # `raw` is a floor (a statement cancelled at its cap): ours/raw is then a ceiling.
    raw_floor: bool = False

    def cost_ratio(self, other: float | None, *, ceiling: bool = False) -> str:
        if not other or not self.ours:
            return "-"
        ratio = other / self.ours if self.higher_is_better else self.ours / other
        return f"{'<' if ceiling else ''}{ratio:.2f}"

    def cells(self) -> list[str]:
        def value(label: str, number: float | None) -> str:
            if number is None:
                return "-"
            return f"{label} {self.fmt.format(number)}".strip()

        return [
            self.measurement,
            self.fmt.format(self.ours),
            value(self.naive_label, self.naive),
            value(self.raw_label, self.raw),
            self.cost_ratio(self.naive),
            self.cost_ratio(self.raw, ceiling=self.raw_floor),
            self.goal,
            "-" if self.ok is None else "yes" if self.ok else "NO",
        ]


HEADER = [
    "measurement",
    "ours",
    "naive/plain",
    "raw limit",
    "ours/naive",
    "ours/raw",
    "goal",
    "ok",
]


def print_table(rows: Sequence[Row]) -> None:
    table = [HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    for line in table:
        cells = (cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        print("  ".join(cells).rstrip())
    print("Ratios compare cost per operation: above 1, ours is that many times slower.")
