"""The erasure journal: every erasure path appends its customers to the file after its
commit (never before, never for a rolled-back one), with ids and field names only; a
write that fails leaves the erasure pending in the database for the retrying task and
the beat; concurrent appenders write each entry once; production checks the file."""

import json
import os
import re
import threading
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from apps.customers import journal as journal_module
from apps.customers import tasks
from apps.customers.checks import check_erasure_journal
from apps.customers.journal import (
    erasure_journal_add,
    erasure_journal_flush,
    erasure_journal_line_count,
    erasure_journal_read,
)
from apps.customers.models import Customer, ErasureAction, ErasureJournalPending
from apps.customers.services import (
    customer_shred,
    customers_clear_fields_bulk,
    customers_delete_bulk,
    customers_shred_bulk,
)
from apps.retention.services import customer_erase
from tests.brokers import redis_url_or_skip, thread_worker
from tests.concurrency import at_once
from tests.customers.factories import CANARY, make_canary, make_customer


@pytest.fixture
def journal(settings, tmp_path) -> Path:
    """A journal file of the test's own."""
    path = tmp_path / "erasure-journal.jsonl"
    settings.AMANAH_ERASURE_JOURNAL = str(path)
    return path


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def key_of(customer: Customer) -> str:
    return str(customer.data_key_id)


# Each erasure path, after its commit


@pytest.mark.django_db
def test_an_erasure_is_appended_after_its_commit_not_before(
    journal, django_capture_on_commit_callbacks
):
    customer = make_customer()
    with django_capture_on_commit_callbacks() as callbacks:
        customer_shred(actor=None, customer=customer)
    assert not journal.exists()  # the transaction has not committed yet
    assert ErasureJournalPending.objects.count() == 1

    for callback in callbacks:
        callback()

    customer.refresh_from_db()
    assert lines(journal) == [
        {
            "v": 1,
            "customer": str(customer.pk),
            "data_key": key_of(customer),
            "action": "erased",
            "at": customer.erased_at.isoformat(),
        }
    ]
    assert not ErasureJournalPending.objects.exists()


@pytest.mark.django_db
def test_erasing_through_retention_is_journaled(
    journal, privacy_admin, django_capture_on_commit_callbacks
):
    customer = make_customer()
    with django_capture_on_commit_callbacks(execute=True):
        customer_erase(actor=privacy_admin, customer=customer)
    assert [line["customer"] for line in lines(journal)] == [str(customer.pk)]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("anonymize", "action"), [(False, "erased"), (True, "anonymized")]
)
def test_a_bulk_shred_journals_each_customer_it_erased(
    journal, anonymize, action, django_capture_on_commit_callbacks
):
    first, second, before = make_customer(), make_customer(), make_customer()
    customer_shred(actor=None, customer=before)  # already erased: not again
    ErasureJournalPending.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        count = customers_shred_bulk(
            customer_ids=[first.pk, second.pk, before.pk], anonymize=anonymize
        )

    assert count == 2
    first.refresh_from_db()
    got = lines(journal)
    assert {(line["customer"], line["data_key"]) for line in got} == {
        (str(first.pk), key_of(first)),
        (str(second.pk), key_of(second)),
    }
    assert {line["action"] for line in got} == {action}
    assert {line["at"] for line in got} == {first.erased_at.isoformat()}


@pytest.mark.django_db
def test_a_bulk_delete_journals_the_customers_and_their_keys(
    journal, django_capture_on_commit_callbacks
):
    gone, kept = make_customer(), make_customer()
    expected = (str(gone.pk), key_of(gone))
    with django_capture_on_commit_callbacks(execute=True):
        customers_delete_bulk(customer_ids=[gone.pk, uuid.uuid4()])

    got = lines(journal)
    assert [(line["customer"], line["data_key"]) for line in got] == [expected]
    assert got[0]["action"] == "deleted"
    assert not Customer.objects.filter(pk=gone.pk).exists()
    assert Customer.objects.filter(pk=kept.pk).exists()


@pytest.mark.django_db
def test_clearing_fields_journals_the_field_names_only(
    journal, django_capture_on_commit_callbacks
):
    customer = make_customer()
    with django_capture_on_commit_callbacks(execute=True):
        customers_clear_fields_bulk(
            customer_ids=[customer.pk], fields=["notes", "city"]
        )

    (line,) = lines(journal)
    assert line["action"] == "cleared"
    assert line["fields"] == ["city", "notes"]
    assert line["customer"] == str(customer.pk)


def _erase_then_fail(*customers: Customer) -> None:
    with transaction.atomic():
        customer_shred(actor=None, customer=customers[0])
        customers_shred_bulk(customer_ids=[c.pk for c in customers[1:]])
        raise RuntimeError("rolled back")


@pytest.mark.django_db
def test_a_rolled_back_erasure_is_never_journaled(
    journal, django_capture_on_commit_callbacks
):
    customers = make_customer(), make_customer()
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
    ):
        _erase_then_fail(*customers)
    assert callbacks == []
    assert not ErasureJournalPending.objects.exists()
    assert not journal.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_commit_appends_and_a_real_rollback_does_not(journal):
    kept, erased = make_customer(), make_customer()
    with pytest.raises(RuntimeError):
        _erase_then_fail(kept)
    assert not journal.exists()

    customer_shred(actor=None, customer=erased)

    assert [line["customer"] for line in lines(journal)] == [str(erased.pk)]
    assert not ErasureJournalPending.objects.exists()


@pytest.mark.django_db
def test_the_journal_holds_no_personal_data(
    journal, django_capture_on_commit_callbacks
):
    """The canary through every path (one canary at a time: its email is unique
    until it is erased)."""
    with django_capture_on_commit_callbacks(execute=True):
        canary = make_canary()
        customers_clear_fields_bulk(
            customer_ids=[canary.pk], fields=["notes", "full_name", "email"]
        )
        customer_shred(actor=None, customer=canary)
        customers_shred_bulk(customer_ids=[make_canary().pk], anonymize=True)
        customers_delete_bulk(customer_ids=[make_canary().pk])

    data = journal.read_bytes()
    assert len(data.splitlines()) == 4
    for value in CANARY.values():
        assert value.encode() not in data
    assert b"canary" not in data.lower()
    assert b"Prefers afternoon" not in data  # the factory's notes
    assert b"ID-JK" not in data  # nor plain columns: ids, times and field names only


# When the file cannot be written


@pytest.mark.django_db
def test_a_failed_write_leaves_the_erasure_pending_and_queues_the_retry(
    settings, tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    missing = tmp_path / "not-mounted"
    settings.AMANAH_ERASURE_JOURNAL = str(missing / "erasure-journal.jsonl")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    queued: list[tuple] = []
    monkeypatch.setattr(
        tasks.erasure_journal_flush_task,
        "delay",
        lambda *args, **kwargs: queued.append((args, kwargs)),
    )
    customer = make_customer()

    with django_capture_on_commit_callbacks(execute=True):
        customer_shred(actor=None, customer=customer)

    customer.refresh_from_db()
    assert customer.is_erased  # the erasure stands
    assert queued == [((), {})]  # no arguments: it flushes whatever is pending
    assert ErasureJournalPending.objects.count() == 1

    missing.mkdir()
    assert erasure_journal_flush() == 1

    got = lines(missing / "erasure-journal.jsonl")
    assert [line["customer"] for line in got] == [str(customer.pk)]
    assert not ErasureJournalPending.objects.exists()


@pytest.mark.django_db
def test_a_failed_write_with_no_broker_waits_for_the_next_flush(
    settings, tmp_path, django_capture_on_commit_callbacks
):
    """Tasks run in-process (no broker, no beat): the next erasure's flush appends
    the earlier one too."""
    missing = tmp_path / "later"
    settings.AMANAH_ERASURE_JOURNAL = str(missing / "erasure-journal.jsonl")
    first, second = make_customer(), make_customer()
    with django_capture_on_commit_callbacks(execute=True):
        customer_shred(actor=None, customer=first)
    assert ErasureJournalPending.objects.count() == 1

    missing.mkdir()
    with django_capture_on_commit_callbacks(execute=True):
        customer_shred(actor=None, customer=second)

    got = [line["customer"] for line in lines(missing / "erasure-journal.jsonl")]
    assert got == [str(first.pk), str(second.pk)]


def test_the_flush_task_retries_file_and_database_errors_with_backoff():
    from django.db import OperationalError

    task = tasks.erasure_journal_flush_task
    assert set(task.autoretry_for) == {OSError, OperationalError}
    assert task.retry_backoff is True
    assert task.acks_late is True


def test_the_beat_flushes_what_is_pending():
    entries = [
        entry
        for entry in django_settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == tasks.erasure_journal_flush_task.name
    ]
    assert len(entries) == 1
    assert entries[0]["schedule"].total_seconds() <= 10 * 60


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_worker_retries_until_the_journal_can_be_written(
    settings, tmp_path, monkeypatch
):
    """On a real worker (Redis): the write fails, the task is queued and fails too,
    its retry (backoff) succeeds once the directory is there."""
    broker_url = redis_url_or_skip()
    missing = tmp_path / "not-mounted"
    path = missing / "erasure-journal.jsonl"
    settings.AMANAH_ERASURE_JOURNAL = str(path)
    attempts: list[str] = []
    real_flush = tasks.erasure_journal_flush

    def flush() -> int:
        try:
            written = real_flush()
        except OSError:
            attempts.append("failed")
            raise
        attempts.append("written")
        return written

    monkeypatch.setattr(tasks, "erasure_journal_flush", flush)
    customer = make_customer()
    queue = f"amanah-test-{uuid.uuid4().hex[:8]}"
    with thread_worker(broker_url, queue, settings, monkeypatch):
        customer_shred(actor=None, customer=customer)  # commits; the write fails
        assert ErasureJournalPending.objects.count() == 1
        _wait(lambda: "failed" in attempts)
        missing.mkdir()
        _wait(lambda: "written" in attempts, seconds=40)

    assert attempts[0] == "failed"
    assert [line["customer"] for line in lines(path)] == [str(customer.pk)]
    assert not ErasureJournalPending.objects.exists()


def _wait(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        threading.Event().wait(0.1)


# The file itself


@pytest.mark.django_db
def test_a_line_cut_short_by_a_crash_spoils_only_itself(journal):
    journal.write_bytes(b'{"v":1,"customer":"0a')  # a write the machine never finished
    customer_id, key_id = uuid.uuid4(), uuid.uuid4()
    with transaction.atomic():
        erasure_journal_add(
            action=ErasureAction.ERASED,
            customers=[(customer_id, key_id)],
            at=timezone.now(),
        )
    erasure_journal_flush()

    read = list(erasure_journal_read(journal))
    assert [type(item).__name__ for item in read] == ["UnreadableLine", "JournalEntry"]
    assert read[1].customer == customer_id


@pytest.mark.django_db
def test_a_new_journal_is_private_to_its_owner(journal):
    with transaction.atomic():
        erasure_journal_add(
            action=ErasureAction.ERASED,
            customers=[(uuid.uuid4(), uuid.uuid4())],
            at=timezone.now(),
        )
    erasure_journal_flush()
    assert oct(journal.stat().st_mode & 0o777) == "0o600"


@pytest.mark.django_db
def test_a_failed_write_is_cut_back_off(journal, monkeypatch):
    journal.write_bytes(b'{"v":1}\n')
    with transaction.atomic():
        erasure_journal_add(
            action=ErasureAction.ERASED,
            customers=[(uuid.uuid4(), uuid.uuid4())],
            at=timezone.now(),
        )
    real_fsync = os.fsync

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal_module.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        erasure_journal_flush()
    monkeypatch.setattr(journal_module.os, "fsync", real_fsync)

    assert journal.read_bytes() == b'{"v":1}\n'
    assert ErasureJournalPending.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_flushes_write_each_entry_once(journal):
    """Three appenders at once over 60 pending erasures (each flush takes 20 per
    transaction): rows one holds, the others skip."""
    now = timezone.now()
    expected = set()
    for _ in range(60):
        pairs = [(uuid.uuid4(), uuid.uuid4()) for _ in range(50)]
        expected |= {str(customer) for customer, _ in pairs}
        ErasureJournalPending.objects.create(
            action=ErasureAction.ERASED,
            at=now,
            customers=[[str(c), str(k)] for c, k in pairs],
        )

    results = at_once([erasure_journal_flush] * 3)

    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(results) == 3000  # type: ignore[arg-type]
    written = [line["customer"] for line in lines(journal)]
    assert len(written) == 3000
    assert set(written) == expected
    assert not ErasureJournalPending.objects.exists()


# Production's check


@pytest.mark.parametrize(
    ("value", "ident"),
    [
        ("", "customers.E001"),
        ("erasure-journal.jsonl", "customers.E002"),
        ("{tmp}/no-such-dir/erasure-journal.jsonl", "customers.E003"),
        ("{tmp}/a-file/erasure-journal.jsonl", "customers.E003"),
        ("{tmp}", "customers.E004"),
    ],
)
def test_the_deploy_check_refuses_a_journal_it_cannot_append_to(
    settings, tmp_path, value, ident
):
    (tmp_path / "a-file").write_text("")
    settings.AMANAH_ERASURE_JOURNAL = value.format(tmp=tmp_path)
    assert [error.id for error in check_erasure_journal(None)] == [ident]


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_the_deploy_check_refuses_a_directory_it_cannot_write(settings, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    settings.AMANAH_ERASURE_JOURNAL = str(locked / "erasure-journal.jsonl")
    assert [error.id for error in check_erasure_journal(None)] == ["customers.E004"]


def test_the_deploy_check_accepts_a_writable_journal(settings, tmp_path):
    settings.AMANAH_ERASURE_JOURNAL = str(tmp_path / "erasure-journal.jsonl")
    assert check_erasure_journal(None) == []
    (tmp_path / "erasure-journal.jsonl").write_text("")
    assert check_erasure_journal(None) == []


def test_only_reapplying_the_journal_erases_without_journaling():
    root = Path(__file__).resolve().parents[2]
    call = re.compile(r"journal=False,?\s*\)")
    found = {
        str(path.relative_to(root))
        for path in (root / "apps").rglob("*.py")
        if call.search(path.read_text())
    }
    assert found == {"apps/customers/services.py"}
    text = (root / "apps" / "customers" / "services.py").read_text()
    reapplying = text[text.index("def _reapply_batch(") :]
    assert len(call.findall(text)) == len(call.findall(reapplying)) == 3


def test_the_line_count_counts_a_last_line_without_its_newline(tmp_path):
    path = tmp_path / "erasure-journal.jsonl"
    path.write_bytes(b"")
    assert erasure_journal_line_count(path) == 0
    path.write_bytes(b"a\nb\n")
    assert erasure_journal_line_count(path) == 2
    path.write_bytes(b"a\nb\nc")
    assert erasure_journal_line_count(path) == 3
