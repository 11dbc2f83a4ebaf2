"""The read replica on a real standby, once, by hand (not part of `make bench`):

    .venv/bin/python bench/_replica_check.py

Makes a database of its own (`replica_check`) on the local cluster, a streaming
replica of the whole cluster (bench/_replica.py, port BENCH_REPLICA_PORT, 5442), and a
Django process with `DATABASE_REPLICA_URL` on it and `AMANAH_REPLICA_MAX_LAG_S=5`
(raised from the measured lag when other work keeps the cluster busy).
Then: the retention report, the cockpit and the audience CSV come from the standby
(`pg_is_in_recovery()` on the connection they used); an idle primary reads as lag 0;
with replay paused and a write on the primary, the lag passes the bound and the
reads fall back to the primary; after resuming, the standby again; once the standby
is stopped, the reads fall back (no answer). Prints each figure; exits 1 if any
check fails. Drops its database and removes the standby at the end.
"""

import logging
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime

import psycopg
from _replica import (
    REPLICA_PORT,
    replay_paused,
    replica_caught_up,
    replica_lag,
    replica_lag_wait,
    streaming_replica,
)
from _setup import bench_database, configure_django, customers_load

NAME = "replica_check"
# The bound this process starts with; on a cluster other work keeps busy, the
# standby's real lag is more, and the checks set the bound from it (printed).
MAX_LAG_S = 5.0
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "5000"))
AUDIENCE = 500

failures: list[str] = []


def check(what: str, ok: bool, detail: str = "") -> None:
    print(f"  [{'ok' if ok else 'FAIL'}] {what}{': ' + detail if detail else ''}")
    if not ok:
        failures.append(what)


def cluster_size() -> str:
    found = shutil.which("du")
    if not found:
        return "?"
    out = subprocess.run(  # noqa: S603  # nosec B603
        [found, "-sh", "/var/lib/postgresql"], capture_output=True, text=True
    )
    return out.stdout.split()[0] if out.returncode == 0 else "?"


def main() -> int:
    print(f"cluster size (du -sh /var/lib/postgresql): {cluster_size()}")
    os.environ["DATABASE_REPLICA_URL"] = (
        f"postgres://postgres@127.0.0.1:{REPLICA_PORT}/{NAME}"
    )
    os.environ["AMANAH_REPLICA_MAX_LAG_S"] = str(MAX_LAG_S)
    configure_django(NAME)
    fallbacks: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "replica.fallback":
                fallbacks.append(record)

    logging.getLogger("apps.core.replica").addHandler(Keep())

    with bench_database(NAME):
        from django.conf import settings
        from django.db import connections

        from apps.accounts.models import Role, User
        from apps.compliance.selectors import cockpit_get
        from apps.consent.models import ConsentState
        from apps.consent.services import consent_record
        from apps.core import replica
        from apps.core.replica import read_connection, replica_reads
        from apps.customers.models import Customer
        from apps.retention.selectors import retention_report
        from bench._common import audience_csv_via_api

        def in_recovery() -> bool:
            with read_connection().cursor() as cursor:
                cursor.execute("SELECT pg_is_in_recovery()")
                return cursor.fetchone()[0]

        def grant(customer: Customer) -> None:
            consent_record(
                actor=None,
                customer=customer,
                purpose_code="marketing_sms",
                granted=True,
                source="api",
            )

        started = time.monotonic()
        with streaming_replica() as url:
            made = time.monotonic() - started
            print(f"standby made and streaming in {made:.1f} s at {url}")
            t = customers_load(CUSTOMERS, start=datetime(2020, 1, 1, tzinfo=UTC))
            print(f"loaded {CUSTOMERS} customers on the primary in {t:.1f} s")
            for customer in Customer.objects.order_by("pk")[:AUDIENCE]:
                grant(customer)
            waited = replica_caught_up(url)
            print(f"standby caught up {waited * 1000:.0f} ms after the load")
            admin = User.objects.create(
                username="replica-check-admin", role=Role.PRIVACY_ADMIN
            )

            lag = replica_lag(url)
            bound = max(MAX_LAG_S, round(3 * lag + 10))
            settings.AMANAH_REPLICA_MAX_LAG_S = bound
            print(f"1. reads in replica_reads(), lag {lag:.2f} s, bound {bound} s")
            replica.replica_checks_forget()
            with replica_reads() as alias:
                report = retention_report()
                standby = in_recovery()
            check("retention report from the standby", alias == "replica" and standby)
            check("report counted", bool(report["policies"]))
            with replica_reads() as alias:
                cockpit_get()
                check("cockpit from the standby", alias == "replica" and in_recovery())
            body = b"".join(
                audience_csv_via_api(user=admin, purpose_code="marketing_sms")
            )
            lines = body.decode().splitlines()
            pid = connections["replica"].connection.info.backend_pid
            # Asked from another connection to the standby: the backend's last query.
            with psycopg.connect(f"{url}/{NAME}") as other:
                query, standby = other.execute(
                    "SELECT query, pg_is_in_recovery() FROM pg_stat_activity "
                    "WHERE pid = %s",
                    [pid],
                ).fetchone()
            check(
                "audience CSV copied on the standby",
                query.startswith("COPY") and standby and len(lines) == AUDIENCE + 1,
                f"{len(lines) - 1} ids",
            )
            check("no fallback logged", not fallbacks)

            print("2. an idle primary is not lag")
            time.sleep(MAX_LAG_S + 2)
            with connections["replica"].cursor() as cursor:
                cursor.execute(
                    "SELECT EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())"
                )
                naive = float(cursor.fetchone()[0])
            lag = replica_lag(url)
            if lag == 0 and naive > MAX_LAG_S:
                check(
                    "lag 0 though the last replayed commit is old",
                    True,
                    f"lag {lag:.2f} s; now() - last replay {naive:.2f} s",
                )
            else:
                # WAL is the cluster's: another database's writes keep it busy.
                print(
                    f"  [--] cluster not idle (other databases write): lag {lag:.2f} s,"
                    f" now() - last replay {naive:.2f} s"
                )

            bound = max(MAX_LAG_S, round(replica_lag(url) + 5))
            settings.AMANAH_REPLICA_MAX_LAG_S = bound
            print(f"3. replay paused, a write, then lag > bound {bound} s")
            with replay_paused(url):
                last = Customer.objects.order_by("pk")[AUDIENCE]
                grant(last)
                paused = time.monotonic()
                while (lag := replica_lag(url)) <= bound:
                    assert time.monotonic() - paused < 120, lag
                    time.sleep(0.5)
                print(f"   lag {lag:.2f} s after {time.monotonic() - paused:.1f} s")
                time.sleep(replica.CHECK_EVERY_S)
                with replica_reads() as alias:
                    fell_back = alias == "default" and not in_recovery()
                    seen = ConsentState.objects.filter(
                        customer=last, granted=True
                    ).exists()
                check("lag over the bound: reads on the primary", fell_back)
                check("the write is read (from the primary)", seen)
                on_standby = ConsentState.objects.using("replica").filter(
                    customer=last, granted=True
                )
                check("the standby does not have it yet", not on_standby.exists())
                logged = [r for r in fallbacks if r.reason == "lag"]
                check(
                    "a replica.fallback line (reason lag)",
                    bool(logged),
                    f"lag_s={logged[0].lag_s:.2f}" if logged else "",
                )
            resumed = time.monotonic()
            try:
                lag = replica_lag_wait(url, bound - 1, timeout=180)
            except TimeoutError:
                # Replay of the other databases' writes can fall behind on a busy
                # machine: the reads then stay on the primary, as they should.
                lag = replica_lag(url)
                print(f"  [--] resumed, still {lag:.1f} s behind after 180 s (busy)")
            else:
                with psycopg.connect(f"{url}/{NAME}") as other:
                    naive = other.execute(
                        "SELECT EXTRACT(EPOCH FROM now() - "
                        "pg_last_xact_replay_timestamp())"
                    ).fetchone()[0]
                print(
                    f"   resumed: lag {lag:.2f} s after "
                    f"{time.monotonic() - resumed:.2f} s (now() - last replayed "
                    f"commit: {float(naive):.2f} s)"
                )
                replica.replica_checks_forget()
                with replica_reads() as alias:
                    check("after resuming, the standby again", alias == "replica")

        print("4. the standby stopped")
        replica.replica_checks_forget()
        connections["replica"].close()
        fallbacks.clear()
        started = time.monotonic()
        with replica_reads() as alias:
            served = retention_report()
        took = time.monotonic() - started
        check(
            "no answer: the report from the primary",
            alias == "default" and bool(served["policies"]),
            f"{took * 1000:.0f} ms including the refused connection",
        )
        check(
            "a replica.fallback line (reason no_answer)",
            [r.reason for r in fallbacks] == ["no_answer"],
        )
    print("all checks passed" if not failures else f"FAILED: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
