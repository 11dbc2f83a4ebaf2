"""Telling 100,000 affected customers: our notices beside the naive way and the limit.

1. Render and queue one notice per affected customer and channel: `notices_queue`
   (one rendering per language, regime and categories; batches of binary-array
   inserts, each committed) vs the naive way (a Django template and one `save()` per
   notice) vs one INSERT ... SELECT of a fixed text (no rendering at all). Notices per
   second, and the peak memory of each run in a process of its own: the growth of its
   resident memory over the forked Django process's own (about 100 MB, left out;
   `bench/_notices.py`), DEBUG's query log off as in production. Goal: flat, the peak
   for all the affected within 1.2x of the peak for a tenth of them
   (`notices_queue` alone, both measured the same way in the same run).
2. Sending through the channel adapters (locmem email backend): notices per second,
   each claimed, sent and marked in its own short transaction.
3. The incident page (deadlines, counts per country and region, progress) for an
   incident with 100,000 affected customers vs a plain SQL count of the same groups.

`BENCH_CUSTOMERS=10000` gives a quick, smaller run; the goals are set for 100,000 (a
tenth is then 5 of `notices_queue`'s batches of 2,000; at a quick size it is under
one batch, whose working set is smaller, and the "flat" row says little).
"""
# ruff: noqa: E402 - Django must be configured before the models are imported.

import multiprocessing
import os
import statistics
import time
from datetime import UTC, datetime

import _setup
from _setup import Row

DB_NAME = _setup.configure_django()

import _notices  # after Django is configured: it imports the models
from django.conf import settings
from django.core import mail
from django.db import connection, connections
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from apps.accounts.models import Role, User
from apps.incidents.models import AffectedCustomer, IncidentNotice, NoticeWording
from apps.incidents.services import (
    affected_select,
    notices_queue,
    notices_send_batch,
)
from apps.incidents.views import IncidentDetailView

CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "100000"))
SMALL = CUSTOMERS // 10  # the "flat" goal's small incident
NAIVE_SAMPLE = min(5_000, CUSTOMERS)  # the naive way is timed on a sample
SEND_SAMPLE = min(5_000, CUSTOMERS)
PAGE_RUNS = 7

NAIVE_TEMPLATE = Template(
    "Dear customer,\n\nWhat happened\n{{ incident.what_happened }}\n"
    "When: {{ when }}\n\nWhich of your data was involved\n{{ involved }}\n\n"
    "What we are doing\n{{ incident.what_we_are_doing }}\n\n"
    "What you can do\n{{ incident.what_you_can_do }}\n\n"
    "Whom to contact\n{{ incident.contact }}\n"
)


def _in_child(target, *args) -> tuple[float, float]:
    """`target(*args)` in a forked process of its own, measured as
    `_notices.queue_measured` measures ours: (seconds, growth of its peak resident
    memory in MB)."""
    connections.close_all()
    parent, child = multiprocessing.Pipe()

    def run() -> None:
        settings.DEBUG = False  # no query log, as in production
        connection.queries_log.clear()
        base = _setup.proc_status_mb("VmRSS")
        _setup.peak_rss_reset()
        start = time.perf_counter()
        target(*args)
        seconds = time.perf_counter() - start
        child.send((seconds, _setup.proc_status_mb("VmHWM") - base))
        connections.close_all()

    process = multiprocessing.get_context("fork").Process(target=run)
    process.start()
    answer = parent.recv()
    process.join()
    return answer


def queue_naive(incident_id) -> None:
    """A template render and a save() per notice, for a sample of customers."""
    from apps.incidents.models import Incident

    incident = Incident.objects.get(pk=incident_id)
    people = AffectedCustomer.objects.filter(incident=incident).order_by("pk")[
        :NAIVE_SAMPLE
    ]
    for person in people:
        body = NAIVE_TEMPLATE.render(
            Context(
                {
                    "incident": incident,
                    "when": "2026-11-23",
                    "involved": "Contact details",
                }
            )
        )
        # The text rendered for the person, stored for them (a naive notice keeps
        # its text), and a save() per notice.
        wording = NoticeWording.objects.create(
            incident=incident,
            digest=str(person.pk),
            language="en",
            subject="Notice",
            body=body,
        )
        for channel in ("in_app", "email"):
            IncidentNotice.objects.create(
                incident=incident,
                customer_id=person.customer_id,
                channel=channel,
                wording=wording,
                queued_at=timezone.now(),
            )


def queue_raw(incident_id) -> None:
    wording = NoticeWording.objects.create(
        incident_id=incident_id,
        digest="fixed",
        language="en",
        subject="Notice",
        body="Fixed text",
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO incidents_incidentnotice (incident_id, customer_id, channel, "
            "wording_id, status, queued_at, error) "
            "SELECT a.incident_id, a.customer_id, c.channel, %s, "
            "'queued', now(), '' FROM incidents_affectedcustomer a, "
            "(VALUES ('in_app'), ('email')) AS c(channel) WHERE a.incident_id = %s",
            [wording.pk, incident_id],
        )


def main() -> None:
    with _setup.bench_database(DB_NAME):
        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        mail.outbox = []
        load = _setup.sql_load(
            *_setup.customers_fill_sql(
                CUSTOMERS,
                columns={
                    "country": "(ARRAY['ID','US','DE','BR','SG'])[1 + n % 5]",
                    "region": "(ARRAY['ID-JK','US-CA','','BR-SP',''])[1 + n % 5]",
                },
            )
        )
        # Customers whose email really decrypts, for the sending measurement.
        _setup.customers_load(SEND_SAMPLE, start=datetime(2025, 1, 1, tzinfo=UTC))
        _setup.vacuum_analyze("customers_customer", "crypto_datakey")
        admin = User.objects.create(username="bench-admin", role=Role.PRIVACY_ADMIN)

        incident = _notices.incident_make(admin)
        affected_select(actor=admin, incident=incident, scope="all")
        total = AffectedCustomer.objects.filter(incident=incident).count()
        _setup.vacuum_analyze("incidents_affectedcustomer")

        # 3. The incident page, before any notice exists.
        view = IncidentDetailView.as_view()
        request = RequestFactory().get("/")
        request.user = admin
        request.session = {}
        from django.contrib.messages.storage.fallback import FallbackStorage

        request._messages = FallbackStorage(request)

        def page() -> None:
            view(request, incident_id=incident.pk).render()

        def page_sql() -> None:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT country, region, count(*) FROM incidents_affectedcustomer "
                    "WHERE incident_id = %s GROUP BY 1, 2",
                    [incident.pk],
                )
                cursor.fetchall()

        page()
        page_ms = (
            statistics.median(_setup.time_once(page) for _ in range(PAGE_RUNS)) * 1e3
        )
        sql_ms = (
            statistics.median(_setup.time_once(page_sql) for _ in range(PAGE_RUNS))
            * 1e3
        )

        # 1. Queueing: ours, then ours for a tenth of the people, the naive sample
        # and the raw statement, each in a process of its own (peak memory), each on
        # a fresh incident.
        ours_s, ours_mb, queued, _ = _notices.queue_measured(incident, admin)
        small_incident = _notices.incident_with_affected(admin, SMALL)
        small_s, small_mb, small_queued, _ = _notices.queue_measured(
            small_incident, admin
        )

        naive_incident = _notices.incident_make(admin)
        affected_select(actor=admin, incident=naive_incident, scope="all")
        naive_s, naive_mb = _in_child(queue_naive, naive_incident.pk)
        raw_incident = _notices.incident_make(admin)
        affected_select(actor=admin, incident=raw_incident, scope="all")
        raw_s, raw_mb = _in_child(queue_raw, raw_incident.pk)
        raw_count = IncidentNotice.objects.filter(incident=raw_incident).count()

        # 2. Sending a sample of real, decryptable customers.
        send_incident = _notices.incident_make(admin)
        affected_select(
            actor=admin,
            incident=send_incident,
            scope="window",
            created_from=datetime(2024, 12, 31, tzinfo=UTC),
            created_to=datetime(2025, 12, 31, tzinfo=UTC),
        )
        notices_queue(actor=admin, incident=send_incident)
        start = time.perf_counter()
        sent = 0
        while count := notices_send_batch(incident_id=send_incident.pk):
            sent += count
        send_s = time.perf_counter() - start
        assert len(mail.outbox) == SEND_SAMPLE, len(mail.outbox)

        rows = [
            Row(
                f"queue notices for {total:,} people (notices/s)",
                queued / ours_s,
                NAIVE_SAMPLE * 2 / naive_s,
                raw_count / raw_s,
                goal="report",
                ok=None,
                naive_label="save()",
                raw_label="SQL",
                fmt="{:,.0f}",
                higher_is_better=True,
            ),
            Row(
                "  peak memory growth of that run (MB)",
                ours_mb,
                naive_mb,
                raw_mb,
                goal="report",
                ok=None,
                naive_label=f"{NAIVE_SAMPLE:,}:",
                raw_label="SQL",
            ),
            Row(
                f"  the same, {total:,} vs {SMALL:,} people (MB)",
                ours_mb,
                None,
                small_mb,
                goal="flat: ≤ 1.2x",
                ok=ours_mb <= 1.2 * small_mb,
                raw_label=f"{SMALL:,}:",
            ),
            Row(
                f"send {sent:,} notices, email + in-app (notices/s)",
                sent / send_s,
                None,
                None,
                goal="report",
                ok=None,
                fmt="{:,.0f}",
                higher_is_better=True,
            ),
            Row(
                f"incident page, {total:,} affected (ms)",
                page_ms,
                None,
                sql_ms,
                goal="< 1000 ms",
                ok=page_ms < 1000,
                raw_label="SQL counts",
            ),
        ]
        print(_setup.machine_context())
        print(
            f"data: {CUSTOMERS:,} customers loaded in {load:.1f} s; {total:,} affected"
        )
        print(
            f"queued {queued:,} notices in {ours_s:.1f} s; for {SMALL:,} people "
            f"{small_queued:,} in {small_s:.1f} s ({small_queued / small_s:,.0f}/s)"
        )
        print()
        _setup.print_table(rows)


if __name__ == "__main__":
    main()
