"""The retention report read from the clock histograms (apps/retention/clocks.py)
equals a recount from the rows after every kind of change, compacted or not; the
counts' writers never wait on each other; `--verify` finds a tampered count and
`--rebuild` mends it."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from apps.access.models import AccessLogEntry
from apps.access.services import customers_read
from apps.consent.models import ConsentEvent
from apps.core.db import _lock_key
from apps.customers.models import Customer
from apps.customers.services import (
    customer_close,
    customer_restrict,
    customer_restriction_lift,
    customers_clear_fields_bulk,
)
from apps.retention import clocks
from apps.retention.models import ClockCount, ClockDelta, RetentionPolicy
from apps.retention.selectors import (
    policy_overdue_counts,
    retention_report,
    retention_report_differences,
    retention_report_recount,
)
from apps.retention.services import (
    clock_counts_forget,
    customer_erase,
    hold_place,
    hold_release,
    policy_save,
    purge_run,
    retention_counts_compact,
    retention_counts_rebuild,
)
from tests.access.factories import assign, assign_then_close
from tests.consent.factories import consent_answer
from tests.retention.factories import aged_customer
from tests.schema import migrate_to_latest

pytestmark = [pytest.mark.django_db]

REASON = "Litigation hold for the pending dispute"


@pytest.fixture(autouse=True)
def _postgres_only(on_postgres):
    if not on_postgres:
        pytest.skip("The clock histograms are PostgreSQL's (triggers).")


@pytest.fixture
def seeded():
    """A transactional test starts from an empty database: the migrations' policies
    and purposes."""
    from importlib import import_module

    from django.apps import apps

    from apps.consent.models import Purpose
    from tests.consent.factories import reseed_purposes

    if not RetentionPolicy.objects.exists():
        import_module("apps.retention.migrations.0002_seed_policies").seed(apps, None)
    if not Purpose.objects.exists():
        reseed_purposes()


def assert_exact(*, compact: bool = False) -> dict:
    """The report equals the recount now, and again after a compaction."""
    at = timezone.now()
    assert retention_report(at=at) == retention_report_recount(at=at)
    overdue = {p.code: n for p, n in policy_overdue_counts(at=at)}
    assert overdue == {
        line["code"]: line["overdue"]
        for line in retention_report_recount(at=at)["policies"]
    }
    if compact:
        retention_counts_compact()
        assert not ClockDelta.objects.exists()
        assert retention_report(at=at) == retention_report_recount(at=at)
    return retention_report(at=at)


def line(report: dict, code: str) -> dict:
    return next(p for p in report["policies"] if p["code"] == code)


@pytest.mark.parametrize("compact", [False, True])
def test_customers_created_closed_and_aged_are_counted_exactly(compact, support_agent):
    customers = [aged_customer(notes="Call after six") for _ in range(3)]
    assert_exact(compact=compact)
    customer_close(actor=support_agent, customer=customers[0])
    aged_customer(closed_days_ago=800, inactive_days=1200, created_days_ago=900)
    aged_customer(closed_days_ago=729, notes="Prefers email")
    aged_customer(inactive_days=1095 - 20)
    report = assert_exact(compact=compact)
    assert line(report, "closed-accounts")["overdue"] == 1
    assert line(report, "closed-accounts")["due_30"] == 1
    assert line(report, "inactive-customers")["due_30"] == 1
    # Last activity moved, by the model's save and by a set-based update.
    Customer.objects.filter(pk=customers[1].pk).update(
        last_activity_at=timezone.now() - timedelta(days=2000)
    )
    assert line(assert_exact(compact=compact), "inactive-customers")["overdue"] == 2


@pytest.mark.parametrize("compact", [False, True])
def test_erasures_shreds_and_category_clears(compact, privacy_admin):
    noted = [aged_customer(created_days_ago=800, notes="Allergic") for _ in range(3)]
    assert line(assert_exact(), "customer-notes")["overdue"] == 3
    customer_erase(actor=privacy_admin, customer=noted[0])
    customers_clear_fields_bulk(customer_ids=[noted[1].pk], fields=["notes"])
    report = assert_exact(compact=compact)
    assert line(report, "customer-notes")["overdue"] == 1
    assert line(report, "inactive-customers")["held"] == 2


@pytest.mark.parametrize("compact", [False, True])
def test_holds_and_restrictions_placed_and_released(compact, privacy_admin):
    held = aged_customer(closed_days_ago=800)
    restricted = aged_customer(closed_days_ago=800)
    aged_customer(closed_days_ago=800)
    hold = hold_place(actor=privacy_admin, reason=REASON, customer=held)
    restriction = customer_restrict(
        actor=privacy_admin,
        customer=restricted,
        purpose="legal claims",
        source="staff",
    )
    report = assert_exact(compact=compact)
    assert line(report, "closed-accounts")["on_hold"] == 2
    assert line(report, "closed-accounts")["overdue"] == 1
    whole = hold_place(actor=privacy_admin, reason=REASON, covers="closed_accounts")
    report = assert_exact(compact=compact)
    assert line(report, "closed-accounts")["on_hold"] == 3
    assert line(report, "closed-accounts")["overdue"] == 0
    hold_release(actor=privacy_admin, hold=whole)
    hold_release(actor=privacy_admin, hold=hold)
    customer_restriction_lift(
        actor=privacy_admin,
        restriction=restriction,
        reason="The claim was settled out of court",
        customer_told=True,
    )
    assert line(assert_exact(compact=compact), "closed-accounts")["overdue"] == 3


@pytest.mark.parametrize("compact", [False, True])
def test_consent_grants_withdrawals_and_their_clock(compact, privacy_admin):
    customer = aged_customer()
    other = aged_customer()
    consent_answer(customer, "marketing_email")
    consent_answer(customer, "marketing_email", granted=False)
    consent_answer(other, "marketing_email", granted=False)
    assert_exact(compact=compact)
    # The withdrawal's time moves every event of that consent between days.
    from apps.consent.models import ConsentState

    ConsentState.objects.filter(customer=customer).update(
        updated_at=timezone.now() - timedelta(days=1900)
    )
    report = assert_exact(compact=compact)
    assert line(report, "consent-proof")["overdue"] == 2
    assert line(report, "consent-proof")["held"] == 3
    consent_answer(customer, "marketing_email")  # granted again: no clock
    report = assert_exact(compact=compact)
    assert line(report, "consent-proof")["overdue"] == 0
    hold_place(actor=privacy_admin, reason=REASON, customer=other)
    assert_exact(compact=compact)


@pytest.mark.parametrize("compact", [False, True])
def test_access_log_and_interactions(compact, support_agent):
    customer = aged_customer()
    assign(support_agent, customer)
    customers_read(actor=support_agent, customers=[customer])
    customers_read(actor=support_agent, customers=[customer])
    assert_exact(compact=compact)
    AccessLogEntry.objects.filter(
        pk=AccessLogEntry.objects.order_by("pk").first().pk
    ).update(created_at=timezone.now() - timedelta(days=400))
    other = aged_customer()
    assign_then_close(support_agent, other)
    report = assert_exact(compact=compact)
    assert line(report, "access-log")["overdue"] == 1
    assert line(report, "interactions")["held"] == 1


@pytest.mark.parametrize("compact", [False, True])
def test_disposals_in_batches(compact, support_agent):
    for _ in range(3):
        aged_customer(closed_days_ago=800, notes="Old")
    aged_customer(inactive_days=1200)
    customer = aged_customer(created_days_ago=900, notes="Noted")
    assign(support_agent, customer)
    customers_read(actor=support_agent, customers=[customer])
    AccessLogEntry.objects.update(created_at=timezone.now() - timedelta(days=400))
    consent_answer(customer, "marketing_email", granted=False)
    from apps.consent.models import ConsentState

    ConsentState.objects.update(updated_at=timezone.now() - timedelta(days=1900))
    assert_exact(compact=compact)
    result = purge_run(actor=None, batch_size=2)
    assert sum(result.disposed.values()) >= 6
    report = assert_exact(compact=compact)
    assert all(p["overdue"] == 0 for p in report["policies"])
    assert line(report, "closed-accounts")["disposed_total"] == 3


@pytest.mark.parametrize("compact", [False, True])
def test_policy_edits(compact, privacy_admin):
    aged_customer(closed_days_ago=400, created_days_ago=500, notes="A note")
    aged_customer(closed_days_ago=100, notes="Another")
    assert_exact(compact=compact)
    closed = RetentionPolicy.objects.get(code="closed-accounts")
    data = {
        f: getattr(closed, f)
        for f in ("covers", "category", "trigger", "action", "legal_basis")
    }
    policy_save(
        actor=privacy_admin, code="closed-accounts", data={**data, "period_days": 365}
    )
    assert line(assert_exact(compact=compact), "closed-accounts")["overdue"] == 1
    notes = RetentionPolicy.objects.get(code="customer-notes")
    data = {
        f: getattr(notes, f)
        for f in ("covers", "trigger", "action", "legal_basis", "period_days")
    }
    policy_save(
        actor=privacy_admin,
        code="customer-notes",
        data={**data, "category": "identity", "trigger": "last_activity"},
    )
    assert_exact(compact=compact)
    policy_save(
        actor=privacy_admin,
        code="closed-accounts",
        data={
            **data,
            **{
                f: getattr(closed, f)
                for f in ("covers", "category", "trigger", "action")
            },
            "enabled": False,
        },
    )
    report = assert_exact(compact=compact)
    assert "closed-accounts" not in {p["code"] for p in report["policies"]}


def test_window_bounds_are_exact_to_the_microsecond():
    """A clock exactly on a bound, and one a microsecond after it, fall either side,
    whatever the day's other rows."""
    at = datetime(2026, 6, 15, 10, 30, 0, 5, tzinfo=UTC)
    bound = at - timedelta(days=730)
    on, after = aged_customer(), aged_customer()
    Customer.objects.filter(pk=on.pk).update(status="closed", closed_at=bound)
    Customer.objects.filter(pk=after.pk).update(
        status="closed", closed_at=bound + timedelta(microseconds=1)
    )
    report = retention_report(at=at)
    assert report == retention_report_recount(at=at)
    assert line(report, "closed-accounts")["overdue"] == 1
    assert line(report, "closed-accounts")["due_30"] == 1


def test_forget_takes_whole_days_to_zero(support_agent):
    """Rows gone without a trigger firing (as a dropped partition's): forgetting
    their days leaves the counts equal to the rows, compacted counts and pending
    deltas both."""
    customer = aged_customer()
    assign(support_agent, customer)
    customers_read(actor=support_agent, customers=[customer])
    march = datetime(2025, 3, 10, 12, tzinfo=UTC)
    AccessLogEntry.objects.update(created_at=march)
    retention_counts_compact()
    customers_read(actor=support_agent, customers=[customer])
    AccessLogEntry.objects.filter(created_at__gt=march).update(
        created_at=march + timedelta(days=5)
    )
    customers_read(actor=support_agent, customers=[customer])  # April, kept
    AccessLogEntry.objects.filter(created_at__gt=march + timedelta(days=6)).update(
        created_at=datetime(2025, 4, 1, tzinfo=UTC)
    )
    start, end = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        AccessLogEntry.objects.filter(created_at__lt=end).delete()
        cursor.execute("SET LOCAL session_replication_role = origin")
        assert clock_counts_forget(scope="access_log", start=start, end=end) == 2
    assert clocks.histograms(["access_log"])["access_log"] == {end.date(): 1}
    assert retention_report_differences() == []


def test_forget_refuses_partial_days():
    with pytest.raises(ValueError, match="midnight"):
        clock_counts_forget(
            scope="access_log",
            start=datetime(2025, 3, 1, 1, tzinfo=UTC),
            end=datetime(2025, 4, 1, tzinfo=UTC),
        )
    with pytest.raises(ValueError, match="Unknown"):
        clock_counts_forget(
            scope="nope",
            start=datetime(2025, 3, 1, tzinfo=UTC),
            end=datetime(2025, 4, 1, tzinfo=UTC),
        )


def test_verify_reports_a_tampered_count_and_rebuild_mends_it(capsys):
    aged_customer(closed_days_ago=800)
    aged_customer(closed_days_ago=10)
    retention_counts_compact()
    call_command("retention_report", "--verify")
    assert "equals a recount" in capsys.readouterr().out
    day = ClockCount.objects.filter(scope="closed_accounts").order_by("day").first()
    day.rows += 5
    day.save()
    with pytest.raises(CommandError, match="differs from a recount in 2 places"):
        call_command("retention_report", "--verify")
    err = capsys.readouterr().err
    assert "closed-accounts held: report 7, recount 2" in err
    assert "closed-accounts overdue: report 6, recount 1" in err
    call_command("retention_report", "--rebuild")
    assert "1 days corrected" in capsys.readouterr().out
    assert retention_report_differences() == []
    call_command("retention_report", "--verify")


def test_rebuild_counts_rows_the_triggers_never_saw():
    aged_customer(closed_days_ago=800)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")
        Customer.objects.update(last_activity_at=timezone.now() - timedelta(days=3000))
        cursor.execute("SET LOCAL session_replication_role = origin")
    assert retention_report_differences() != []
    assert retention_counts_rebuild() > 0
    assert retention_report_differences() == []
    assert retention_counts_rebuild() == 0


@pytest.mark.django_db(transaction=True)
def test_writers_of_counted_rows_never_wait_on_each_other(support_agent, seeded):
    """Two transactions, each on its own connection, create customers, move their
    clocks and write access-log rows on the same days (the same histogram keys),
    each writing again while the other's writes are uncommitted: with a 1 s lock
    timeout, neither waits for the other."""
    from apps.crypto.services import data_key_create

    first, second = aged_customer(), aged_customer()
    barrier = threading.Barrier(2, timeout=20)
    errors: list[BaseException] = []

    def log(customer: Customer) -> None:
        AccessLogEntry.objects.create(
            staff=support_agent,
            staff_role="support",
            customer=customer,
            fields={"email": "masked"},
            purpose="support_case",
            created_at=timezone.now(),
        )

    def writer(customer: Customer) -> None:
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '1s'")
                now = timezone.now()
                Customer.objects.create(
                    data_key=data_key_create(),
                    country="ID",
                    created_at=now,
                    last_activity_at=now,
                )
                Customer.objects.filter(pk=customer.pk).update(
                    last_activity_at=now - timedelta(days=1200)
                )
                log(customer)
                barrier.wait()  # both hold uncommitted writes to the same keys
                log(customer)
                Customer.objects.filter(pk=customer.pk).update(
                    status="closed", closed_at=now - timedelta(days=800)
                )
                barrier.wait()
        except BaseException as exc:  # reported below
            errors.append(exc)
            barrier.abort()
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=writer, args=(c,)) for c in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert AccessLogEntry.objects.count() == 4
    report = assert_exact(compact=True)
    assert line(report, "closed-accounts")["overdue"] == 2
    assert line(report, "inactive-customers")["overdue"] == 2
    assert line(report, "inactive-customers")["held"] == 4


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("deleted_first", [True, False])
def test_consent_disposal_and_a_grant_at_once_count_each_event_once(
    deleted_first, seeded
):
    """A disposal deleting a withdrawn consent's events while the customer grants it
    again: the delete locks the consent's state first, so the grant's move of that
    consent's events sees the delete, or the delete sees the grant."""
    from apps.consent.models import ConsentState
    from apps.consent.services import consent_events_delete_bulk

    customer = aged_customer()
    consent_answer(customer, "marketing_email")
    consent_answer(customer, "marketing_email", granted=False)
    ConsentState.objects.update(updated_at=timezone.now() - timedelta(days=1900))
    old = list(ConsentEvent.objects.values_list("pk", flat=True))
    started, errors = threading.Event(), []

    def dispose() -> None:
        try:
            with transaction.atomic():
                if not deleted_first:
                    started.wait(10)
                    time.sleep(0.3)  # the grant holds its state row meanwhile
                consent_events_delete_bulk(event_ids=old)
                if deleted_first:
                    started.set()
                    time.sleep(0.5)  # the grant waits for this commit
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    def grant() -> None:
        try:
            if deleted_first:
                started.wait(10)
                consent_answer(customer, "marketing_email")
                return
            with transaction.atomic():
                consent_answer(customer, "marketing_email")
                started.set()
                time.sleep(0.5)  # the delete waits for this commit
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispose), threading.Thread(target=grant)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert ConsentEvent.objects.count() == 1
    report = assert_exact(compact=True)
    assert line(report, "consent-proof")["held"] == 1
    assert clocks.histograms(["consent_events"])["consent_events"] == {}


@pytest.mark.parametrize("compact", [False, True])
def test_a_dropped_access_log_month_is_forgotten(compact, support_agent):
    """The access-log policy drops a wholly due month's partition (no trigger
    fires) and forgets its days: compacted counts and pending deltas both."""
    from apps.access.selectors import access_log_months
    from apps.core.partitions import partition_month_create, partition_name

    old = datetime(timezone.now().year - 2, 3, 1, tzinfo=UTC)
    assert partition_month_create("access_accesslogentry", "created_at", old)
    customer = aged_customer()

    def write(at: datetime) -> None:
        AccessLogEntry.objects.create(
            staff=support_agent,
            staff_role=support_agent.role,
            customer=customer,
            purpose="support",
            created_at=at,
        )

    write(old)
    write(old + timedelta(days=9))
    retention_counts_compact()  # these two in the compacted counts
    write(old + timedelta(days=9, hours=3))  # this one pending
    write(timezone.now() - timedelta(days=3))
    with connection.cursor() as cursor:
        # The foreign-key checks now, as at a commit: a table with checks pending
        # cannot be dropped.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    assert_exact(compact=compact)
    purge_run(actor=None, batch_size=10)
    names = [m.name for m in access_log_months()]
    assert partition_name("access_accesslogentry", old) not in names
    report = assert_exact(compact=compact)
    assert line(report, "access-log")["held"] == 1
    assert clocks.histograms(["access_log"])["access_log"].keys() == {
        (timezone.now() - timedelta(days=3)).astimezone(UTC).date()
    }


@pytest.mark.django_db(transaction=True)
def test_the_migration_reverses_and_applies_again(seeded):
    from django.db.migrations.executor import MigrationExecutor

    def triggers() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'retention_clock_%%'"
            )
            return cursor.fetchone()[0]

    assert triggers() == 14
    executor = MigrationExecutor(connection)
    executor.migrate([("retention", "0008_disposal_log_by_month")])
    assert triggers() == 0
    assert "retention_clockdelta" not in connection.introspection.table_names()
    migrate_to_latest("retention")
    assert triggers() == 14
    aged_customer(closed_days_ago=800)
    assert_exact(compact=True)


def test_the_beat_job_folds_the_deltas(settings):
    from apps.retention.tasks import compact_clock_counts_task

    schedule = settings.CELERY_BEAT_SCHEDULE["retention-compact-clock-counts"]
    assert schedule["task"] == compact_clock_counts_task.name
    aged_customer(closed_days_ago=800)
    pending = ClockDelta.objects.count()
    assert pending > 0
    assert compact_clock_counts_task() == pending
    assert not ClockDelta.objects.exists()
    assert compact_clock_counts_task() == 0
    assert_exact()


def test_a_second_compaction_or_rebuild_does_not_run_at_once():
    """One compaction or rebuild at a time (a session advisory lock): the second
    returns None, or refuses, rather than wait."""
    from django.db import connections

    from apps.retention.errors import RetentionError

    aged_customer(closed_days_ago=800)
    # Another session (a second connection) holds the job's lock.
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_lock(%s)", [_lock_key("retention.clock_counts")]
            )
        assert retention_counts_compact() is None
        with pytest.raises(RetentionError, match="is running"):
            retention_counts_rebuild()
        with pytest.raises(CommandError, match="is running"):
            call_command("retention_report", "--rebuild")
    finally:
        # Let go before closing: a closed connection's backend releases its locks
        # when it exits, a moment after the client has gone on.
        with other.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_unlock(%s)", [_lock_key("retention.clock_counts")]
            )
        other.connection.close()
    assert retention_counts_compact() > 0


@pytest.mark.django_db(transaction=True)
def test_a_rebuild_while_customers_are_written_ends_exact(seeded):
    """`retention_counts_rebuild` recounts a month of clock per transaction (one
    snapshot each) while another connection keeps writing customers whose clocks
    fall in the months being recounted: afterwards the counts equal the rows."""
    for days in (10, 400, 800, 1200):
        aged_customer(closed_days_ago=days, inactive_days=days, created_days_ago=days)
    retention_counts_compact()
    ClockCount.objects.update(rows=0)  # tampered: the rebuild has work everywhere
    done, errors = threading.Event(), []

    def writer() -> None:
        try:
            day = 0
            while not done.is_set() and day < 300:
                aged_customer(closed_days_ago=day * 4, inactive_days=day * 4)
                day += 1
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert clocks.clock_counts_rebuild(span_days=7) > 0
    finally:
        done.set()
        thread.join()
    assert errors == []
    assert Customer.objects.count() > 4
    assert_exact(compact=True)


def test_the_trigger_functions_are_those_the_latest_migration_installs():
    """Migration retention 0009 installs the functions `clocks._functions()` writes
    from the models and the policies' clocks as they are when it runs. A change to
    either (a new PII field, a new clock) changes what the code would write, and a
    database migrated before it keeps the old functions: this fails until a new
    migration installs them again and records their new fingerprint."""
    import hashlib
    import json
    from importlib import import_module

    latest = import_module("apps.retention.migrations.0009_clock_counts")
    written = json.dumps(clocks._functions(), sort_keys=True).encode()
    assert hashlib.sha256(written).hexdigest() == latest.FUNCTIONS_SHA256, (
        "the clock-count trigger functions changed: add a migration that runs "
        "clock_triggers_install again and records FUNCTIONS_SHA256"
    )


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_installed_trigger_functions_are_what_the_code_generates():
    """The migrated test database holds every function the code writes, whole."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT proname, prosrc FROM pg_proc WHERE proname = ANY(%s)",
            [list(clocks._FUNCTIONS.values())],
        )
        installed = dict(cursor.fetchall())
    for label, body in clocks._functions().items():
        name = clocks._FUNCTIONS[label]
        source = body.split("$f$")[1]
        assert installed.get(name) == source, f"{name} differs: add a migration"
