"""`manage.py reapply_erasures` after a restore: the customers the journal names that
the restored database still shows are erased again (shredded, deleted, cleared), set-
based and idempotent, with no new journal lines; unreadable lines are named and the
rest applied."""

import io
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEvent
from apps.consent.models import ConsentEvent
from apps.crypto.fields import ERASED
from apps.crypto.models import DataKey
from apps.customers.models import Customer, ErasureJournalPending
from apps.customers.services import customer_shred, erasures_reapply
from apps.retention.services import hold_place
from tests.consent.factories import consent_answer
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
REASON = "Tax audit 2026: the ledger must be kept for the inspectors."


def line(customer, action: str = "erased", at: datetime = AT, **extra) -> str:
    pk = getattr(customer, "pk", customer)
    key = getattr(customer, "data_key_id", None) or uuid.uuid4()
    entry = {
        "v": 1,
        "customer": str(pk),
        "data_key": str(key),
        "action": action,
        "at": at.isoformat(),
        **extra,
    }
    return json.dumps(entry) + "\n"


@pytest.fixture
def journal(settings, tmp_path) -> Path:
    """The journal being reapplied, which is also the configured one: reapplying
    must add nothing to it."""
    path = tmp_path / "erasure-journal.jsonl"
    settings.AMANAH_ERASURE_JOURNAL = str(path)
    return path


def reapply(path: Path, *args: str) -> str:
    out = io.StringIO()
    call_command("reapply_erasures", "--journal", str(path), *args, stdout=out)
    return out.getvalue()


def is_shredded(customer: Customer) -> bool:
    customer.refresh_from_db()
    key = DataKey.objects.get(pk=customer.data_key_id)
    return (
        customer.is_erased
        and key.wrapped_key is None
        and key.destroyed_at is not None
        and customer.full_name is ERASED
    )


def test_it_shreds_the_customers_still_readable_and_skips_the_rest(journal):
    readable, anonymized, erased = make_customer(), make_customer(), make_customer()
    customer_shred(actor=None, customer=erased)
    gone = uuid.uuid4()  # created after the backup, and erased: not in it
    journal.write_text(
        line(readable) + line(anonymized, "anonymized") + line(erased) + line(gone)
    )

    out = reapply(journal)

    assert out.splitlines()[-1] == (
        "Reapplied 2 erasures; 1 line already applied; 1 line naming customers not "
        "in this database; 0 unreadable lines."
    )
    assert is_shredded(readable)
    assert readable.erased_at == AT  # when it happened, not when it was reapplied
    assert readable.region == "ID-JK"
    assert is_shredded(anonymized)
    assert anonymized.region == ""
    assert Customer.objects.get(pk=erased.pk).erased_at != AT  # left as it was


def test_deleted_customers_are_deleted_again_and_cleared_fields_cleared(journal):
    deleted, cleared, untouched = make_customer(), make_customer(), make_customer()
    journal.write_text(
        line(deleted, "deleted")
        + line(cleared, "cleared", fields=["notes", "city"])
        + line(uuid.uuid4(), "deleted")  # deleted before the backup: already applied
    )

    out = reapply(journal)

    assert "Reapplied 2 erasures; 1 line already applied;" in out
    assert not Customer.objects.filter(pk=deleted.pk).exists()
    assert not DataKey.objects.filter(pk=deleted.data_key_id).exists()
    cleared.refresh_from_db()
    assert cleared.notes is None
    assert cleared.city is None
    assert cleared.full_name == "Jane Doe"  # only the fields named
    assert not cleared.is_erased
    untouched.refresh_from_db()
    assert untouched.notes == "Prefers afternoon deliveries."


def test_a_deleted_customer_goes_with_their_consent_answers(journal):
    customer = make_customer()
    consent_answer(customer, "analytics")
    journal.write_text(line(customer, "deleted"))

    assert "Reapplied 1 erasure;" in reapply(journal)

    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert not ConsentEvent.objects.filter(customer_id=customer.pk).exists()


def test_a_second_run_reapplies_nothing(journal):
    customers = [make_customer() for _ in range(3)]
    journal.write_text(
        line(customers[0])
        + line(customers[1], "deleted")
        + line(customers[2], "cleared", fields=["notes"])
    )
    assert "Reapplied 3 erasures;" in reapply(journal)

    out = reapply(journal)

    assert out.splitlines()[-1] == (
        "Reapplied 0 erasures; 3 lines already applied; 0 lines naming customers "
        "not in this database; 0 unreadable lines."
    )


def test_reapplying_journals_nothing_new_and_asks_about_no_hold(
    journal, privacy_admin, django_capture_on_commit_callbacks
):
    held = make_customer()
    hold_place(actor=privacy_admin, customer=held, reason=REASON)
    journal.write_text(line(held) + line(make_customer(), "deleted"))
    before = journal.read_bytes()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        out = reapply(journal)

    assert "Reapplied 2 erasures;" in out
    assert is_shredded(held)  # the erasure happened before the hold was restored
    assert journal.read_bytes() == before
    assert not ErasureJournalPending.objects.exists()
    assert callbacks == []


def test_it_is_audited_with_counts_only(journal):
    journal.write_text(line(make_customer()) + line(uuid.uuid4()) + "not json\n")
    with pytest.raises(CommandError):
        reapply(journal)
    event = AuditEvent.objects.get(action="erasures.reapplied")
    assert event.details == {
        "reapplied": 1,
        "already_applied": 0,
        "not_found": 1,
        "unreadable": 1,
    }


def test_unreadable_lines_are_named_and_every_other_line_applied(journal):
    first, last = make_customer(), make_customer()
    bad = [
        "not json at all\n",
        json.dumps({"v": 1, "customer": "nope", "data_key": str(uuid.uuid4())}) + "\n",
        line(uuid.uuid4(), "shredded"),  # no such action
        line(uuid.uuid4(), "cleared", fields=["password"]),  # no such field
        line(uuid.uuid4()).replace('"v": 1', '"v": 2'),  # a version it cannot read
        line(uuid.uuid4()).replace("+00:00", ""),  # a time without its zone
        "[1, 2]\n",
    ]
    journal.write_text(line(first) + "".join(bad) + "\n" + line(last))

    out = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("reapply_erasures", "--journal", str(journal), stdout=out)

    assert str(raised.value) == (
        f"7 lines of {journal} could not be read (lines 2, 3, 4, 5, 6, ...); every "
        "other line was applied."
    )
    assert "Reapplied 2 erasures;" in out.getvalue()
    assert "7 unreadable lines." in out.getvalue()
    assert is_shredded(first)
    assert is_shredded(last)


def test_one_unreadable_line_is_named_alone(journal):
    journal.write_text(line(make_customer()) + '{"v": 1, "customer"')
    with pytest.raises(CommandError) as raised:
        reapply(journal)
    assert str(raised.value) == (
        f"1 line of {journal} could not be read (line 2); every other line was applied."
    )


def test_a_missing_journal_is_one_line(tmp_path):
    missing = tmp_path / "nowhere.jsonl"
    with pytest.raises(CommandError, match=f"^No erasure journal at {missing}.$"):
        reapply(missing)
    with pytest.raises(CommandError, match=r"^Cannot read the erasure journal at "):
        reapply(tmp_path)  # a directory


def test_the_batch_size_must_be_positive(journal):
    journal.write_text("")
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        reapply(journal, "--batch-size", "0")


def test_lines_across_batches_are_applied_in_order(journal):
    """A customer cleared, then erased, then deleted, each line in a batch of its
    own, and duplicates (a flush that crashed before deleting its rows)."""
    customer, twice = make_customer(), make_customer()
    journal.write_text(
        line(customer, "cleared", fields=["notes"])
        + line(twice)
        + line(customer)
        + line(twice)
        + line(customer, "deleted")
    )

    out = reapply(journal, "--batch-size", "1")

    assert out.splitlines()[-1] == (
        "Reapplied 4 erasures; 1 line already applied; 0 lines naming customers not "
        "in this database; 0 unreadable lines."
    )
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert is_shredded(twice)


def test_an_erased_customer_reads_as_erased_afterwards(journal):
    customer = make_customer()
    journal.write_text(line(customer))
    reapply(journal)
    customer = Customer.objects.get(pk=customer.pk)
    assert customer.is_erased
    assert str(customer.email) == "[erased]"


def test_erasure_times_of_many_customers_are_kept(journal):
    customers = [make_customer() for _ in range(4)]
    times = [datetime(2026, 1, n + 1, tzinfo=UTC) for n in range(4)]
    journal.write_text(
        "".join(line(c, at=at) for c, at in zip(customers, times, strict=True))
    )
    reapply(journal)
    got = dict(
        Customer.objects.filter(pk__in=[c.pk for c in customers]).values_list(
            "pk", "erased_at"
        )
    )
    assert got == {c.pk: at for c, at in zip(customers, times, strict=True)}


def test_a_batch_costs_the_same_queries_whatever_its_size(journal, tmp_path):
    """Set-based: no query per line."""

    def queries(count: int) -> int:
        path = tmp_path / f"journal-{count}.jsonl"
        with path.open("w") as out:
            for n in range(count):
                out.write(line(make_customer(), ("erased", "deleted")[n % 2]))
                out.write(line(make_customer(), "cleared", fields=["notes"]))
                out.write(line(uuid.uuid4()))
        with CaptureQueriesContext(connection) as captured:
            erasures_reapply(path=path)
        return len(captured)

    assert queries(4) == queries(12)
