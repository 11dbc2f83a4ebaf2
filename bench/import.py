"""What importing existing customers costs: 100,000 rows of a CSV file.

1. `customers_import` (what `manage.py import_customers` and the upload page's worker
   run): every row through the API's validation, sealed field by field under a data
   key of its own, blind-indexed, with one consent each (source `import`, its original
   time), in batches of 2,000 with one audit event each; new customers validated and
   sealed in worker processes (one per core but one: `import_workers()`), each batch
   written on a thread of its own while the next is read and looked up;
   vs the per-row API path: `POST /api/v1/customers/` through DRF's test client plus
   `consent_import` per row, timed on a sample (`API_SAMPLE` rows) and scaled to the
   file, as labelled;
   vs the raw limit: PostgreSQL's `COPY ... FROM STDIN (FORMAT binary)` of the very rows
   the import wrote (customers with their ciphertexts, data keys, consent events and
   state) back into the same tables, with their indexes and foreign keys (the
   import's rows deleted first; the COPY into copies of the tables without foreign
   keys is printed too, for reference), plus the encryption
   alone for the same rows (a fresh data key wrapped under the master key and each PII
   field sealed with bare AES-256-GCM, in a loop). Goal: ours <= 2x (COPY +
   encryption).
2. Peak memory: the import of 100,000 rows and of ten times as many, each in a process
   of its own (forked; DEBUG's query log off there, as in production): the growth of its
   resident memory (peak `VmHWM` after a reset, less `VmRSS` at the reset: the forked
   Django process's own base, some 100 MB, is left out, or it would hide growth), and
   the largest peak RSS of its worker processes (`RUSAGE_CHILDREN`, once they are
   reaped: whole processes, each forked from the importing one, so its base is in
   it). Goal: flat, each peak at 1,000,000 within 1.2x of the same peak at 100,000.
   (Not a tenth of the rows: 10,000 are five batches, fewer than it takes the
   import's batches in flight, its working set, to reach their steady state; its
   peak grows to about 100,000 rows and no further, measured to 300,000.)

The files are written to a temporary directory first (6 PII fields, one consent; 1 row
in 100 refused: a card number in the name). `BENCH_CUSTOMERS=10000` gives a quicker,
smaller run; the goals are set for 100,000 (a quick run's memory rows compare 10,000
rows with 100,000, and 10,000 is short of the steady state: they say little).
"""
# ruff: noqa: E402 - Django must be configured before the models are imported.

import csv
import io
import logging
import multiprocessing
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

# The webhooks app uses the `requests` library, whose name bench/requests.py shares;
# bench/ is first on the path: load the library before _setup blocks that name.
_BENCH = str(Path(__file__).resolve().parent)
sys.path[:] = [p for p in sys.path if p != _BENCH]
import requests  # noqa: F401

sys.path.insert(0, _BENCH)

import _setup
from _setup import Row

# The per-row API path is timed, not throttled.
os.environ.setdefault("AMANAH_API_RATE", "1000000/minute")
DB_NAME = _setup.configure_django()

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import connection, connections, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Role, User
from apps.consent.services import consent_import
from apps.crypto.keys import wrap
from apps.crypto.masterkeys import master_key_for_wrapping
from apps.imports.services import customers_import, import_workers

CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "100000"))
FLAT = CUSTOMERS * 10  # the "flat" goal's large import
API_SAMPLE = min(1_000, CUSTOMERS)
REFUSED_EVERY = 100
PURPOSE = "marketing_email"
GRANTED_AT = "2024-03-01T09:30:00+00:00"
HEADER = [
    "country",
    "full_name",
    "email",
    "phone",
    "address_line",
    "city",
    "national_id",
    f"consent:{PURPOSE}",
    f"consent_at:{PURPOSE}",
]
PII = ("full_name", "email", "phone", "address_line", "city", "national_id")


def row(prefix: str, i: int) -> list[str]:
    name = f"Bench {prefix} {i:06d}"
    if i % REFUSED_EVERY == REFUSED_EVERY - 1:
        name += " 4111 1111 1111 1111"  # refused: a card number
    return [
        "ID",
        name,
        f"{prefix}{i:06d}@bench.example",
        f"+62813{i:07d}" if prefix == "s" else f"+62812{i:07d}",
        f"Jl. Benchmark {i}",
        "Jakarta",
        f"NIK-{i:08d}",
        "granted",
        GRANTED_AT,
    ]


def write_file(path: Path, prefix: str, count: int) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for i in range(count):
            writer.writerow(row(prefix, i))


def _rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def import_in_child(path: Path) -> tuple[float, float, float, str]:
    """`customers_import` of `path` in a forked process: (seconds, growth of its peak
    RSS in MB, the largest peak RSS MB of its worker processes, summary)."""
    connections.close_all()
    parent, child = multiprocessing.Pipe()

    def run() -> None:
        # DEBUG's query log (bench settings) keeps every statement's text: a
        # production process keeps none, and its memory is what is measured.
        settings.DEBUG = False
        connection.queries_log.clear()
        base = _setup.proc_status_mb("VmRSS")
        _setup.peak_rss_reset()
        errors = io.StringIO()
        writer = csv.writer(errors)
        start = time.perf_counter()
        with path.open("rb") as f:  # as the command opens it
            result = customers_import(
                actor=None,
                file=f,
                on_error=lambda e: writer.writerow([e.line, e.field, e.code]),
            )
        child.send(
            (
                time.perf_counter() - start,
                _setup.proc_status_mb("VmHWM") - base,
                _rss_mb(resource.RUSAGE_CHILDREN),
                result.summary(),
            )
        )
        connections.close_all()

    process = multiprocessing.get_context("fork").Process(target=run)
    process.start()
    answer = parent.recv()
    process.join()
    return answer


def api_per_row(path: Path, admin: User) -> float:
    """Seconds per row: POST /api/v1/customers/ then `consent_import`, row by row."""
    # The sample's refused rows (1 in 100) answer 400: expected, not news.
    logging.getLogger("django.request").setLevel(logging.ERROR)
    client = APIClient()
    client.force_authenticate(admin)
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))[:API_SAMPLE]
    start = time.perf_counter()
    for data in rows:
        body = {name: data[name] for name in ("country", *PII)}
        answer = client.post("/api/v1/customers/", body, format="json")
        if answer.status_code != 201:
            assert answer.status_code == 400, answer.status_code
            continue
        from apps.customers.selectors import customer_get

        consent_import(
            actor=admin,
            customer=customer_get(customer_id=answer.json()["id"]),
            purpose_code=PURPOSE,
            granted=True,
            at=timezone.now().replace(year=2024),
        )
    return (time.perf_counter() - start) / len(rows)


COPIED = {
    # table: which of its rows the import wrote (after `cut`)
    "crypto_datakey": "created_at > %(cut)s",
    "customers_customer": "created_at > %(cut)s",
    "consent_consentevent": "customer_id IN (SELECT id FROM customers_customer "
    "WHERE created_at > %(cut)s)",
    "consent_consentstate": "customer_id IN (SELECT id FROM customers_customer "
    "WHERE created_at > %(cut)s)",
}


def copy_seconds(cut) -> tuple[float, float, int]:
    """COPY the import's rows out (untimed), then back in, timed and committed each
    time: (1) into the very tables the import wrote, with their indexes and foreign
    keys (the import's rows deleted first, untimed: the rows go back where they
    were); (2) into empty copies of those tables with the same indexes and no
    foreign keys. Returns (seconds of 1, seconds of 2, customers copied)."""
    blobs: dict[str, bytes] = {}
    with connection.cursor() as cursor:
        raw = cursor.cursor
        for table, where in COPIED.items():
            query = raw.mogrify(
                f"COPY (SELECT * FROM {table} WHERE {where}) TO STDOUT (FORMAT binary)",
                {"cut": cut},
            )
            out = bytearray()
            with raw.copy(query) as copy:
                for data in copy:
                    out += data
            blobs[table] = bytes(out)
            cursor.execute(f"CREATE TABLE bench_{table} (LIKE {table} INCLUDING ALL)")
        cursor.execute(
            "SELECT count(*) FROM customers_customer WHERE created_at > %s", [cut]
        )
        copied = cursor.fetchone()[0]
        # Referencing tables first; the foreign keys' triggers off for this session
        # (a superuser's), as the rows come back unchanged.
        cursor.execute("SET session_replication_role = replica")
        for table, where in reversed(COPIED.items()):
            cursor.execute(
                raw.mogrify(f"DELETE FROM {table} WHERE {where}", {"cut": cut})
            )
        cursor.execute("SET session_replication_role = DEFAULT")
        for table in COPIED:  # as compact as the tables the import began with
            cursor.execute(f"VACUUM ANALYZE {table}")
            cursor.execute(f"REINDEX TABLE {table}")

    def timed(prefix: str) -> float:
        start = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            raw = cursor.cursor
            for table, blob in blobs.items():
                with raw.copy(
                    f"COPY {prefix}{table} FROM STDIN (FORMAT binary)"
                ) as copy:
                    copy.write(blob)
        return time.perf_counter() - start

    return timed(""), timed("bench_"), copied


def encryption_seconds(path: Path) -> float:
    """A data key per row wrapped under the master key, each PII field sealed with
    bare AES-256-GCM (a nonce each, the field's associated data), for every row."""
    ring, version = master_key_for_wrapping()
    with path.open(newline="") as f:
        rows = [[r[name] for name in PII] for r in csv.DictReader(f)]
    start = time.perf_counter()
    for values in rows:
        key_id = uuid.uuid4()
        dek = os.urandom(32)
        wrap(dek, data_key_id=key_id, ring=ring, version=version)
        aead = AESGCM(dek)
        aad = str(key_id).encode()
        for value in values:
            aead.encrypt(os.urandom(12), value.encode(), aad)
    return time.perf_counter() - start


def main() -> None:
    with _setup.bench_database(DB_NAME), tempfile.TemporaryDirectory() as tmp:
        admin = User.objects.create_user(
            username="bench-admin", password=None, role=Role.PRIVACY_ADMIN
        )
        large, sample = (Path(tmp) / n for n in ("l.csv", "a.csv"))
        write_file(large, "l", CUSTOMERS)
        write_file(sample, "a", API_SAMPLE)

        cut = timezone.now()
        ours_s, ours_mb, workers_mb, summary = import_in_child(large)
        copy_s, copy_no_fk_s, copied = copy_seconds(cut)
        enc_s = encryption_seconds(large)
        api_s = api_per_row(sample, admin)
        # Last: the tables then hold ten times the rows the measurements above met.
        flat = Path(tmp) / "f.csv"
        write_file(flat, "f", FLAT)
        flat_s, flat_mb, flat_workers_mb, flat_summary = import_in_child(flat)

        raw_s = copy_s + enc_s
        rows = [
            Row(
                f"import {CUSTOMERS:,} rows (s)",
                ours_s,
                api_s * CUSTOMERS,
                raw_s,
                goal="<= 2x (COPY + encryption)",
                ok=ours_s <= 2 * raw_s,
                naive_label=f"API per row, {API_SAMPLE:,}-row sample scaled:",
                raw_label="COPY+enc",
            ),
            Row(
                "  COPY of the same ciphertexts into the same tables (s)",
                copy_s,
                None,
                None,
                goal="explains raw",
                ok=None,
            ),
            Row(
                "  (the same COPY into copies without foreign keys) (s)",
                copy_no_fk_s,
                None,
                None,
                goal="for reference",
                ok=None,
            ),
            Row(
                "  encryption alone: key wrap + AES-GCM (s)",
                enc_s,
                None,
                None,
                goal="explains raw",
                ok=None,
            ),
            Row(
                f"import rows/s ({CUSTOMERS:,} rows)",
                CUSTOMERS / ours_s,
                1 / api_s,
                CUSTOMERS / raw_s,
                goal="report",
                ok=None,
                naive_label="API:",
                raw_label="COPY+enc",
                fmt="{:,.0f}",
                higher_is_better=True,
            ),
            Row(
                f"peak RSS growth of the import process (MB), {FLAT:,} vs "
                f"{CUSTOMERS:,}",
                flat_mb,
                None,
                ours_mb,
                goal="flat: <= 1.2x",
                ok=flat_mb <= 1.2 * ours_mb,
                raw_label=f"{CUSTOMERS:,} rows:",
            ),
            Row(
                f"peak RSS of a worker process (MB), {FLAT:,} vs {CUSTOMERS:,}",
                flat_workers_mb,
                None,
                workers_mb,
                goal="flat: <= 1.2x",
                ok=flat_workers_mb <= 1.2 * workers_mb,
                raw_label=f"{CUSTOMERS:,} rows:",
            ),
        ]
        print(_setup.machine_context())
        print(f"import worker processes: {import_workers()} (one per core but one)")
        print(
            f"data: {CUSTOMERS:,} rows ({summary}); {FLAT:,} rows ({flat_summary}) "
            f"in {flat_s:.1f} s; COPY moved {copied:,} customers with their keys "
            "and consents"
        )
        print()
        _setup.print_table(rows)


if __name__ == "__main__":
    main()
