"""A customer's export: 10,000 access-log rows and 1,000 consent events.

Ours: `export_build` (ZIP of JSON and HTML, sealed under the customer's data key), run
in a process of its own for its peak memory. Naive: Django's `serializers.serialize`
of the same rows into one JSON document. Raw limit: the rows as JSON straight from
PostgreSQL (`json_agg`), no ZIP, no sealing.
"""
# ruff: noqa: E402 - Django must be configured before the models are imported.

import multiprocessing
import os
import resource
import time
from datetime import UTC, datetime

import _setup
from _setup import Row

DB_NAME = _setup.configure_django()

from django.core import serializers
from django.db import connection, connections

from apps.access.models import AccessLogEntry
from apps.accounts.models import Role, User
from apps.consent.models import ConsentEvent
from apps.customers.models import Customer
from apps.requests.models import DataRequest
from apps.requests.services import export_build

LOG_ROWS = int(os.environ.get("BENCH_LOG_ROWS", "10000"))
CONSENT_EVENTS = int(os.environ.get("BENCH_CONSENT_EVENTS", "1000"))


def _in_child(target, *args) -> tuple[float, float]:
    """`target(*args)` in a forked process: (seconds, peak RSS growth in MB)."""
    connections.close_all()
    parent, child = multiprocessing.Pipe()

    def run() -> None:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        start = time.perf_counter()
        target(*args)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        child.send((time.perf_counter() - start, (peak - base) / 1024))
        connections.close_all()

    process = multiprocessing.get_context("fork").Process(target=run)
    process.start()
    result = parent.recv()
    process.join()
    return result


def ours(request_id) -> None:
    export_build(request=DataRequest.objects.get(pk=request_id))


def naive(customer_id) -> None:
    rows = list(AccessLogEntry.objects.filter(customer_id=customer_id))
    rows += list(ConsentEvent.objects.filter(customer_id=customer_id))
    serializers.serialize("json", rows)


def raw(customer_id) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT json_agg(a) FROM access_accesslogentry a "
            "WHERE customer_id = %s), (SELECT json_agg(e) FROM consent_consentevent e "
            "WHERE customer_id = %s)",
            [customer_id, customer_id],
        )
        cursor.fetchone()


def main() -> None:
    with _setup.bench_database(DB_NAME):
        from django.conf import settings

        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        _setup.customers_load(1, start=datetime(2025, 1, 1, tzinfo=UTC))
        customer = Customer.objects.get()
        staff = User.objects.create(username="bench-agent", role=Role.SUPPORT_AGENT)
        load = _setup.sql_load(
            (
                "INSERT INTO access_accesslogentry (staff_id, staff_role, customer_id, "
                "fields, purpose, created_at) SELECT %s, 'support_agent', %s, "
                '\'{"full_name": "full", "email": "masked"}\', \'support_case\', '
                "now() - n * interval '1 minute' FROM generate_series(1, %s) AS n",
                [staff.pk, customer.pk, LOG_ROWS],
            ),
            (
                "INSERT INTO consent_consentevent (customer_id, purpose_id, granted, "
                "notice_version, source, created_at, evidence_hash) SELECT %s, "
                "(SELECT id FROM consent_purpose ORDER BY id LIMIT 1), n %% 2 = 0, 1, "
                "'api', now() - n * interval '1 hour', '' "
                "FROM generate_series(1, %s) AS n",
                [customer.pk, CONSENT_EVENTS],
            ),
        )
        request = DataRequest.objects.create(
            customer=customer,
            data_key_id=customer.data_key_id,
            kind="access",
            regime="GDPR",
            received_at=datetime.now(UTC),
            due_at=datetime.now(UTC),
            opened_by=staff,
        )
        ours_s, ours_mb = _in_child(ours, request.pk)
        size = len(bytes(DataRequest.objects.get(pk=request.pk).export_blob))
        naive_s, naive_mb = _in_child(naive, customer.pk)
        raw_s, raw_mb = _in_child(raw, customer.pk)
        rows = [
            Row(
                f"export, {LOG_ROWS:,} log rows + {CONSENT_EVENTS:,} events (s)",
                ours_s,
                naive_s,
                raw_s,
                goal="< 2 s",
                ok=ours_s < 2,
                naive_label="serialize",
                raw_label="json_agg",
                fmt="{:.2f}",
            ),
            Row(
                "  peak memory growth (MB)",
                ours_mb,
                naive_mb,
                raw_mb,
                goal="< 100 MB",
                ok=ours_mb < 100,
                naive_label="serialize",
                raw_label="json_agg",
            ),
        ]
        print(_setup.machine_context())
        print(
            f"data: {LOG_ROWS:,} access-log rows and {CONSENT_EVENTS:,} consent events "
            f"loaded in {load:.1f} s; sealed ZIP {size / 1024:,.0f} KiB"
        )
        print()
        _setup.print_table(rows)


if __name__ == "__main__":
    main()
