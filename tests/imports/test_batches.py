"""The batch path: its queries do not grow with the batch, and a batch the database
refuses is imported again row by row."""

import io
import logging
import os
import threading
import tracemalloc
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEvent
from apps.consent import services as consent_services
from apps.consent.models import ConsentEvent, ConsentSource, ConsentState
from apps.customers.models import Customer
from apps.imports import services
from apps.imports.services import customers_import
from apps.webhooks.models import Event
from apps.webhooks.services import _ANY_ENDPOINT
from tests.consent.factories import reseed_purposes
from tests.webhooks.factories import make_endpoint

HEADER = (
    "country,full_name,email,phone,consent:marketing_email,consent_at:marketing_email"
)


def _file(first: int, count: int) -> io.StringIO:
    lines = [HEADER] + [
        f"ID,Person {n},p{n}@example.com,+62812{n:07d},granted,2024-03-01T09:30:00Z"
        for n in range(first, first + count)
    ]
    return io.StringIO("\n".join(lines) + "\n")


def _queries(first: int, count: int) -> int:
    with CaptureQueriesContext(connection) as queries:
        result = customers_import(actor=None, file=_file(first, count), batch_size=100)
    assert result.imported == count
    return len(queries)


def test_a_batch_costs_the_same_queries_whatever_its_size():
    _queries(0, 2)  # warm: the purposes, the master key in use
    small = _queries(100, 5)
    large = _queries(200, 40)
    assert large == small
    # A rerun reads the customers of a batch in one query, whatever their number.
    assert _rerun_queries(200, 40) == _rerun_queries(100, 5)


def _rerun_queries(first: int, count: int) -> int:
    with CaptureQueriesContext(connection) as queries:
        result = customers_import(actor=None, file=_file(first, count), batch_size=100)
    assert result.skipped == count
    return len(queries)


def test_a_batch_the_database_refuses_is_imported_row_by_row(monkeypatch):
    """Refused for its values (IntegrityError, DataError): other database errors
    stop the import (tests/imports/test_failures.py)."""
    insert = services.customers_insert_prepared

    def refuse_batches(*, prepared):
        if len(prepared.results) > 1:
            raise IntegrityError("duplicate key value")
        return insert(prepared=prepared)

    monkeypatch.setattr(services, "customers_insert_prepared", refuse_batches)
    result = customers_import(actor=None, file=_file(0, 3), batch_size=3)
    assert (result.imported, result.refused) == (3, 0)
    assert Customer.objects.count() == 3
    # Each row its own batch then, each with its audit event.
    assert AuditEvent.objects.filter(action="customers.batch_imported").count() == 3


@pytest.fixture
def webhook_endpoint(privacy_admin, settings):
    """An endpoint, so that changes are recorded as events (none is delivered)."""
    settings.AMANAH_WEBHOOK_ALLOW_HTTP = True
    settings.AMANAH_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    cache.set(_ANY_ENDPOINT, 0)
    make_endpoint(privacy_admin, "http://127.0.0.1:9/hook")
    yield
    cache.set(_ANY_ENDPOINT, 0)


def test_one_email_twice_in_a_file_is_refused_the_second_time(webhook_endpoint):
    """The first row with an email is imported, a later one refused (line, field
    email, code duplicate_in_file), in a dry run as in the real run; a rerun of the
    same file skips what it imported and rectifies no one."""
    text = (
        "country,full_name,email\n"
        "ID,First Name,twice@example.com\n"
        "ID,Other,once@example.com\n"
        "ID,Second Name,TWICE@example.com\n"
    )

    def run(*, dry_run: bool = False, batch_size: int = 100) -> tuple:
        errors: list = []
        result = customers_import(
            actor=None,
            file=io.StringIO(text),
            batch_size=batch_size,
            dry_run=dry_run,
            on_error=errors.append,
        )
        counts = (result.imported, result.updated, result.skipped, result.refused)
        return counts, [(e.line, e.field, e.code) for e in errors]

    refusal = [(4, "email", "duplicate_in_file")]
    assert run(dry_run=True) == ((2, 0, 0, 1), refusal)
    assert Customer.objects.count() == 0
    assert run() == ((2, 0, 0, 1), refusal)
    names = {c.full_name for c in Customer.objects.all()}
    assert names == {"First Name", "Other"}
    rectified = Event.objects.filter(type="customer.rectified")
    assert not rectified.exists()
    # Again, in batches of one row: the same answer, and nothing rectified.
    assert run(batch_size=1) == ((0, 0, 2, 1), refusal)
    assert run() == ((0, 0, 2, 1), refusal)
    assert not rectified.exists()
    # A real change is told (the endpoint records events).
    text = text.replace("Other", "Other Name")
    assert run() == ((0, 1, 1, 1), refusal)
    assert rectified.count() == 1


def test_imported_consents_are_told_to_endpoints_once(webhook_endpoint):
    """Each answer an import records is a `consent.changed` event with its original
    time; a rerun records none, so tells nothing again."""
    assert customers_import(actor=None, file=_file(0, 3), batch_size=2).imported == 3
    changed = Event.objects.filter(type="consent.changed")
    assert (
        sorted(e.payload["data"]["at"] for e in changed)
        == ["2024-03-01T09:30:00+00:00"] * 3
    )
    assert {e.payload["data"]["source"] for e in changed} == {ConsentSource.IMPORT}
    assert changed.values("customer_id").distinct().count() == 3
    assert customers_import(actor=None, file=_file(0, 3), batch_size=2).skipped == 3
    assert changed.count() == 3


BAD_ROWS = (
    "country,full_name,email,phone,national_id,consent:marketing_email,"
    "consent_at:marketing_email\n"
    "ID,Good One,one@example.com,+6281200000001,,granted,2024-03-01T09:30:00Z\n"
    "ID,Card 4111 1111 1111 1111,card@example.com,,,,\n"
    "ID,Bad Phone,phone@example.com,12,,,\n"
    "ID,Good Two,two@example.com,0812-0000-0002,3171234567890123,withdrawn,"
    "2024-03-01T09:30:00Z\n"
    "XX,Bad Country,country@example.com,,,,\n"
    "ID,Bad Consent,consent@example.com,,,maybe,\n"
    "ID,Good Three,three@example.com,,,,\n"
)


def _run(
    workers: int, domain: str = "example.com"
) -> tuple[tuple[int, ...], list[tuple[int, str, str]]]:
    errors: list = []
    result = customers_import(
        actor=None,
        file=io.StringIO(BAD_ROWS.replace("@example.com", f"@{domain}")),
        batch_size=2,
        workers=workers,
        on_error=errors.append,
    )
    counts = (result.imported, result.updated, result.skipped, result.refused)
    return counts, [(e.line, e.field, e.code) for e in errors]


def test_worker_processes_validate_and_seal_as_this_process_does():
    """The same file through worker processes and without: the same counts and
    refusals, first time and on a rerun."""
    with_workers = _run(workers=1)
    assert with_workers[0] == (3, 0, 0, 4)
    assert {(line, field) for line, field, _ in with_workers[1]} == {
        (3, "full_name"),
        (4, "phone"),
        (6, "country"),
        (7, "consent:marketing_email"),
    }
    assert _run(workers=0, domain="other.example") == with_workers
    # A rerun through the workers finds every customer: nothing is imported twice.
    assert _run(workers=1)[0] == (0, 0, 3, 4)


def test_bulk_sealed_customers_read_back_and_are_found_by_their_blind_indexes():
    customers_import(actor=None, file=io.StringIO(BAD_ROWS), workers=1, batch_size=2)
    two = Customer.objects.get(email_index="TWO@example.com")
    assert (two.full_name, two.email) == ("Good Two", "two@example.com")
    assert two.phone == "+6281200000002"  # E.164, as the API stores it
    assert two.national_id == "3171234567890123"
    # The phone's index, computed from the E.164 value, is the model field's own.
    assert Customer.objects.filter(phone_index="0812 0000 0002").get() == two
    assert Customer.objects.filter(phone_index="+62 812-0000-0001").count() == 1


def test_a_daemonic_process_imports_without_worker_processes(monkeypatch):
    """A Celery prefork worker's process is daemonic: it may not fork a pool."""
    monkeypatch.setattr(services.os, "cpu_count", lambda: 8)
    # One thread, as in the command (pytest-xdist runs a thread of its own).
    monkeypatch.setattr(services.threading, "active_count", lambda: 1)
    monkeypatch.setattr(
        services.multiprocessing,
        "current_process",
        lambda: SimpleNamespace(daemon=True),
    )
    assert services.import_workers() == 0
    monkeypatch.setattr(
        services.multiprocessing,
        "current_process",
        lambda: SimpleNamespace(daemon=False),
    )
    assert services.import_workers() == 7
    monkeypatch.setattr(services.os, "cpu_count", lambda: 1)
    assert services.import_workers() == 0


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_batches_are_written_on_a_thread_of_their_own():
    """As the command and the upload's task run it (no caller's transaction): the
    writer thread, worker processes, an email again two batches on, and a rerun."""
    reseed_purposes()  # a transactional test before this one may have flushed them
    text = BAD_ROWS + "ID,Good Two Again,TWO@example.com,,,,\n"
    progress: list[int] = []
    errors: list = []
    threads = []

    def on_progress(result) -> None:
        progress.append(result.rows)
        threads.append(threading.current_thread().name)

    result = customers_import(
        actor=None,
        file=io.StringIO(text),
        batch_size=2,
        workers=1,
        on_error=errors.append,
        on_progress=on_progress,
    )
    assert (result.imported, result.updated, result.refused) == (3, 0, 5)
    assert {(e.line, e.field) for e in errors} == {
        (3, "full_name"),
        (4, "phone"),
        (6, "country"),
        (7, "consent:marketing_email"),
        (9, "email"),
    }
    assert progress == [2, 4, 6, 8]
    assert set(threads) == {"customers-import-writer"}
    two = Customer.objects.get(email_index="two@example.com")
    assert two.full_name == "Good Two"
    batches = AuditEvent.objects.filter(action="customers.batch_imported").count()
    assert batches == len(progress)
    rerun = customers_import(actor=None, file=io.StringIO(text), batch_size=2)
    # The file names one customer twice: the second row is refused again.
    assert (rerun.imported, rerun.updated, rerun.skipped, rerun.refused) == (0, 0, 3, 5)
    assert Customer.objects.count() == 3


def test_consents_import_without_postgresql_features(monkeypatch):
    """`make run` uses SQLite: the consent import's other branch (no DISTINCT ON, no
    COPY) records, skips on a rerun and moves the state to a newer answer, as the
    PostgreSQL one does. Run here with the connection saying it is not PostgreSQL."""
    monkeypatch.setattr(connection, "vendor", "sqlite")
    seen: list[str] = []
    real = consent_services._latest_answers

    def latest(**kwargs):
        seen.append(connection.vendor)
        with CaptureQueriesContext(connection) as queries:
            answer = real(**kwargs)
        assert not any("DISTINCT ON" in q["sql"] for q in queries.captured_queries)
        return answer

    monkeypatch.setattr(consent_services, "_latest_answers", latest)
    text = (
        "country,full_name,email,consent:marketing_email,consent_at:marketing_email\n"
        "ID,Ani,ani@example.com,granted,2024-03-01T09:30:00Z\n"
        "ID,Budi,budi@example.com,withdrawn,2024-03-01T09:30:00Z\n"
    )

    def run(text: str) -> tuple[int, ...]:
        result = customers_import(actor=None, file=io.StringIO(text), workers=0)
        return (result.imported, result.updated, result.skipped, result.refused)

    assert run(text) == (2, 0, 0, 0)
    assert run(text) == (0, 0, 2, 0)
    assert seen == ["sqlite"]
    newer = text.replace("granted,2024-03-01", "withdrawn,2024-04-01")
    assert run(newer) == (0, 1, 1, 0)
    ani = Customer.objects.get(email_index="ani@example.com")
    assert ConsentEvent.objects.filter(customer=ani).count() == 2
    state = ConsentState.objects.get(customer=ani)
    assert (state.granted, state.source) == (False, ConsentSource.IMPORT)
    newest = ConsentEvent.objects.filter(customer=ani).latest("id")
    assert state.last_event_id == newest.pk


def test_imported_consents_name_who_imported_them(privacy_admin):
    """As `consent_record` does for every other change of the ledger (the new
    customers' answers go in by COPY)."""
    customers_import(actor=privacy_admin, file=_file(0, 3), batch_size=100)
    assert set(ConsentEvent.objects.values_list("actor_id", flat=True)) == {
        privacy_admin.pk
    }


def _peak_growth(path, first: int, count: int) -> int:
    """Bytes the import's peak of traced Python memory rose by, the file read from
    disk as the command reads it, in batches of 200."""
    path.write_text(_file(first, count).getvalue())
    with path.open("rb") as f:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            result = customers_import(actor=None, file=f, batch_size=200, workers=0)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert result.imported == count
    return peak - before


def test_the_emails_of_a_long_file_are_not_kept_in_memory(tmp_path, caplog):
    # Each row's email is remembered (a repeat is refused), but not in this process:
    # ten times the rows, the same peak but for a few bytes a row (from five batches
    # on: the batches in flight are the import's working set; the test's
    # transaction keeps each batch's on-commit callbacks). Kept in a set, the
    # emails took some 100 bytes a row. (Python's memory: SQLite's own is
    # `_EmailsSeen`'s test.) In the test's transaction the batches are
    # written on this thread: with the writer's thread beside it the peak is the
    # two threads' chance overlap. The test's own capture of each batch's log lines
    # is no part of it.
    caplog.set_level(logging.WARNING)
    path = tmp_path / "customers.csv"
    _peak_growth(path, 0, 300)  # warm: the purposes, the master key in use
    small = _peak_growth(path, 1_000, 1_000)
    large = _peak_growth(path, 10_000, 10_000)
    assert (large - small) / 9_000 < 40, (large, small)


def test_the_emails_seen_are_in_a_file_and_found_again():
    seen = services._EmailsSeen()
    try:
        # A file of its own (unlinked), not a database in memory.
        ((_, name, path),) = seen.db.execute("PRAGMA database_list").fetchall()
        assert name == "main"
        assert path.endswith(".sqlite3")
        assert not os.path.exists(path)

        def rows(*emails):
            return [
                services._Row(line=n, raw={}, key=email and email.ljust(64, "0"))
                for n, email in enumerate(emails)
            ]

        first = rows("a1", None, "b2", "a1")
        seen.mark(first)
        assert [r.duplicate for r in first] == [False, False, False, True]
        second = rows("b2", "c3", None)
        seen.mark(second)
        assert [r.duplicate for r in second] == [True, False, False]
    finally:
        seen.close()
