import threading
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import close_old_connections, connection
from django.utils import timezone

from apps.access.models import AccessLogEntry
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_chain_verify
from apps.consent.models import ConsentEvent
from apps.crypto.fields import ERASED
from apps.customers.models import Customer
from apps.customers.selectors import customer_get, customer_list
from apps.retention import services
from apps.retention.models import (
    DisposalLogEntry,
    DisposalRun,
    RetentionPolicy,
    RunStatus,
)
from apps.retention.scopes import SCOPES
from apps.retention.selectors import disposable, retention_report
from apps.retention.services import (
    hold_place,
    hold_release,
    purge_dry_run,
    purge_run,
    subject_ref,
)
from tests.consent.factories import consent_answer
from tests.retention.factories import aged_customer

pytestmark = pytest.mark.django_db

CLOSED = "closed-accounts"


def policy(code: str) -> RetentionPolicy:
    return RetentionPolicy.objects.get(code=code)


def due_ids(code: str) -> set:
    return set(disposable(policy(code)).values_list("pk", flat=True))


def test_closed_accounts_are_due_exactly_two_years_after_closing():
    now = timezone.now()
    jakarta = ZoneInfo("Asia/Jakarta")
    on_time = aged_customer(closed_days_ago=0)
    early = aged_customer(closed_days_ago=0)
    boundary = now - timedelta(days=730)
    # The same instants written in another time zone: clocks compare instants.
    Customer.objects.filter(pk=on_time.pk).update(
        closed_at=boundary.astimezone(jakarta)
    )
    Customer.objects.filter(pk=early.pk).update(
        closed_at=(boundary + timedelta(seconds=5)).astimezone(jakarta)
    )
    ids = set(disposable(policy(CLOSED), at=now).values_list("pk", flat=True))
    assert on_time.pk in ids
    assert early.pk not in ids


@pytest.mark.parametrize(
    ("code", "kwargs", "due"),
    [
        ("inactive-customers", {"inactive_days": 1095}, True),
        ("inactive-customers", {"inactive_days": 1094}, False),
        ("customer-notes", {"created_days_ago": 730}, True),
        ("customer-notes", {"created_days_ago": 729}, False),
        (CLOSED, {"closed_days_ago": 731}, True),
        (CLOSED, {"inactive_days": 5000}, False),  # open accounts are not "closed"
    ],
)
def test_due_dates_per_trigger(code, kwargs, due):
    customer = aged_customer(notes="A note.", **kwargs)
    assert (customer.pk in due_ids(code)) is due


def test_consent_events_are_due_five_years_after_withdrawal():
    customer = aged_customer()
    for granted in (True, False):
        consent_answer(customer, "marketing_sms", granted)
    assert due_ids("consent-proof") == set()
    from apps.consent.models import ConsentState

    ConsentState.objects.update(updated_at=timezone.now() - timedelta(days=1826))
    assert len(due_ids("consent-proof")) == 2


def test_held_records_never_go(privacy_admin):
    held = aged_customer(closed_days_ago=800)
    free = aged_customer(closed_days_ago=800)
    hold_place(actor=privacy_admin, customer=held, reason="Litigation 2026-17 pending")
    expired = aged_customer(closed_days_ago=800)
    old_hold = hold_place(
        actor=privacy_admin,
        customer=expired,
        reason="Tax audit, ends soon",
        ends_at=timezone.now() + timedelta(days=1),
    )
    from apps.retention.models import LegalHold

    LegalHold.objects.filter(pk=old_hold.pk).update(ends_at=timezone.now())
    purge_run(actor=None, batch_size=10)
    assert customer_get(customer_id=held.pk).email != ERASED
    assert customer_get(customer_id=free.pk).email is ERASED
    assert customer_get(customer_id=expired.pk).email is ERASED


@pytest.mark.parametrize("source", ["request", "legal_hold", "objection_review"])
def test_restricted_customers_are_kept_as_held_ones_are(privacy_admin, source):
    """GDPR art. 18: restricted data may be stored, and is kept for the stated
    purpose; a run disposes of it once the restriction is lifted."""
    from apps.customers.services import customer_restrict, customer_restriction_lift

    restricted = aged_customer(closed_days_ago=800)
    free = aged_customer(closed_days_ago=800)
    restriction = customer_restrict(
        actor=privacy_admin,
        customer=restricted,
        purpose="Legal claims: a dispute in court",
        source=source,
    )
    assert list(disposable(policy(CLOSED)).values_list("pk", flat=True)) == [free.pk]
    report = {p["code"]: p for p in retention_report()["policies"]}
    assert (report[CLOSED]["overdue"], report[CLOSED]["on_hold"]) == (1, 1)
    purge_run(actor=None, batch_size=10)
    assert customer_get(customer_id=restricted.pk).email != ERASED
    assert customer_get(customer_id=free.pk).email is ERASED
    customer_restriction_lift(
        actor=privacy_admin,
        restriction=restriction,
        reason="Dispute settled, customer told",
        customer_told=True,
    )
    assert list(disposable(policy(CLOSED)).values_list("pk", flat=True)) == [
        restricted.pk
    ]


@pytest.mark.postgres
def test_the_cockpit_counts_leave_restricted_customers_out_as_the_report_does(
    support_agent, privacy_admin
):
    from apps.customers.services import customer_restrict
    from apps.retention.selectors import policies_in_run_order, policy_overdue_counts
    from tests.compliance.cockpit_data import overdue_everywhere

    overdue_everywhere(agent=support_agent, admin=privacy_admin, extra=1)

    def counts() -> tuple[dict, dict, dict]:
        report = {p["code"]: p["overdue"] for p in retention_report()["policies"]}
        cockpit = {p.code: n for p, n in policy_overdue_counts()}
        runs = {p.code: disposable(p).count() for p in policies_in_run_order()}
        return report, cockpit, runs

    report_before, _, runs_before = counts()
    # Every customer due under some policy, restricted (one in three customers).
    for customer in Customer.objects.order_by("pk")[::3]:
        customer_restrict(
            actor=privacy_admin,
            customer=customer,
            purpose="Legal claims: a dispute in court",
            source="request",
        )
    report, cockpit, runs = counts()
    assert cockpit == report
    assert report != report_before
    assert runs != runs_before
    assert all(report[code] <= report_before[code] for code in report)


def test_a_hold_on_a_whole_kind_of_record_stops_that_policy(privacy_admin):
    aged_customer(closed_days_ago=800)
    hold = hold_place(
        actor=privacy_admin, covers="closed_accounts", reason="Regulator inquiry"
    )
    assert SCOPES["closed_accounts"].due(policy(CLOSED), at=timezone.now()).count() == 1
    assert disposable(policy(CLOSED)).count() == 0
    report = {p["code"]: p for p in retention_report()["policies"]}
    assert report[CLOSED]["on_hold"] == 1
    assert report[CLOSED]["overdue"] == 0
    hold_release(actor=privacy_admin, hold=hold)
    assert disposable(policy(CLOSED)).count() == 1


def test_the_dry_run_changes_nothing():
    aged_customer(closed_days_ago=800)
    before = (
        AuditEvent.objects.count(),
        Customer.objects.filter(erased_at=None).count(),
    )
    lines = {line.policy.code: line.rows for line in purge_dry_run().policies}
    assert lines[CLOSED] == 1
    assert (
        AuditEvent.objects.count(),
        Customer.objects.filter(erased_at=None).count(),
    ) == (before)
    assert not DisposalRun.objects.exists()


def test_disposal_shreds_logs_pseudonymously_and_audits():
    gone = aged_customer(closed_days_ago=800, email="gone@example.com")
    result = purge_run(actor=None, batch_size=10)
    assert result.disposed[CLOSED] == 1
    fresh = customer_get(customer_id=gone.pk)
    assert fresh.email is ERASED
    assert fresh.data_key.is_destroyed
    assert list(customer_list(email="gone@example.com")) == []
    entry = DisposalLogEntry.objects.get(policy__code=CLOSED)
    assert entry.subject_ref == subject_ref(gone.pk)
    assert str(gone.pk) not in entry.subject_ref
    assert result.run.status == RunStatus.COMPLETED
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert "disposal.run_started" in actions
    assert "disposal.run_completed" in actions
    assert audit_chain_verify().ok


def test_a_run_that_fails_after_batch_k_finishes_on_the_next_run(monkeypatch):
    customers = [aged_customer(closed_days_ago=800) for _ in range(7)]
    real = services.disposal_batch_execute
    calls = {"n": 0}

    closed_id = policy(CLOSED).pk

    def fail_on_third_batch(**kwargs):
        if kwargs["policy_id"] == closed_id:
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("worker killed")
        return real(**kwargs)

    monkeypatch.setattr(services, "disposal_batch_execute", fail_on_third_batch)
    with pytest.raises(RuntimeError):
        purge_run(actor=None, batch_size=2)
    run = DisposalRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert Customer.objects.filter(erased_at__isnull=False).count() == 4

    monkeypatch.setattr(services, "disposal_batch_execute", real)
    result = purge_run(actor=None, batch_size=2)
    assert result.run.pk == run.pk  # resumed, not restarted
    assert result.run.status == RunStatus.COMPLETED
    assert Customer.objects.filter(erased_at__isnull=False).count() == len(customers)
    assert DisposalLogEntry.objects.filter(policy__code=CLOSED).count() == len(
        customers
    )
    assert result.disposed[CLOSED] == len(customers)


def test_delete_action_removes_the_customer_and_everything_hanging_on_them(
    support_agent,
):
    from tests.access.factories import assign

    RetentionPolicy.objects.filter(code=CLOSED).update(action="delete")
    customer = aged_customer()
    assign(support_agent, customer)
    from apps.access.services import customers_read

    customers_read(actor=support_agent, customers=[customer])
    consent_answer(customer, "analytics")
    Customer.objects.filter(pk=customer.pk).update(
        status="closed", closed_at=timezone.now() - timedelta(days=800)
    )
    purge_run(actor=None, batch_size=10)
    assert not Customer.objects.filter(pk=customer.pk).exists()
    assert not AccessLogEntry.objects.filter(customer_id=customer.pk).exists()
    assert not ConsentEvent.objects.filter(customer_id=customer.pk).exists()
    from apps.crypto.models import DataKey

    assert not DataKey.objects.filter(pk=customer.data_key_id).exists()


def test_old_access_log_entries_are_deleted(support_agent):
    from apps.access.services import customers_read
    from tests.access.factories import assign

    customer = aged_customer()
    assign(support_agent, customer)
    customers_read(actor=support_agent, customers=[customer])
    customers_read(actor=support_agent, customers=[customer])
    AccessLogEntry.objects.filter(pk=AccessLogEntry.objects.first().pk).update(
        created_at=timezone.now() - timedelta(days=366)
    )
    result = purge_run(actor=None, batch_size=10)
    assert result.disposed["access-log"] == 1
    assert AccessLogEntry.objects.count() == 1


@pytest.mark.postgres  # the SQL it compares with uses PostgreSQL intervals
def test_the_report_counts_equal_sql_counts():
    for days in (800, 800, 705, 690, 650, 10):
        aged_customer(closed_days_ago=days)
    report = {p["code"]: p for p in retention_report()["policies"]}
    closed = report[CLOSED]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE closed_at <= now() - interval '730 days'), "
            "count(*) FILTER (WHERE closed_at > now() - interval '730 days' "
            "AND closed_at <= now() - interval '700 days'), count(*) "
            "FROM customers_customer WHERE status = 'closed' AND erased_at IS NULL"
        )
        overdue, due_30, held = cursor.fetchone()
    assert (closed["overdue"], closed["due_30"], closed["held"]) == (
        overdue,
        due_30,
        held,
    )
    purge_run(actor=None, batch_size=10)
    report = {p["code"]: p for p in retention_report()["policies"]}
    assert report[CLOSED]["overdue"] == 0
    assert report[CLOSED]["disposed_total"] == overdue


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_do_no_double_work():
    from importlib import import_module

    from django.apps import apps

    import_module("apps.retention.migrations.0002_seed_policies").seed(apps, None)
    for _ in range(40):
        aged_customer(closed_days_ago=800)
    errors = []

    def run() -> None:
        try:
            purge_run(actor=None, batch_size=3)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Customer.objects.filter(erased_at__isnull=False).count() == 40
    refs = list(DisposalLogEntry.objects.values_list("subject_ref", flat=True))
    assert len(refs) == len(set(refs)) == 40


@pytest.mark.parametrize(
    "whole_kind", [False, True, "restricted"], ids=["customer", "kind", "restricted"]
)
def test_the_consent_proof_report_agrees_with_the_due_query(privacy_admin, whole_kind):
    """The report's join for consent events counts what the per-event clock counts."""
    from apps.consent.models import ConsentState
    from apps.retention.selectors import _held_filter

    now = timezone.now()
    customers = []
    for withdrawn_days_ago in (1900, 1826, 1820, 1790, 1760, 1700, 10, None):
        customer = aged_customer()
        customers.append(customer)
        for granted in (True, False) if withdrawn_days_ago else (True,):
            consent_answer(customer, "marketing_sms", granted)
        if withdrawn_days_ago:
            ConsentState.objects.filter(customer=customer).update(
                updated_at=now - timedelta(days=withdrawn_days_ago)
            )
    if whole_kind == "restricted":
        from apps.customers.services import customer_restrict

        customer_restrict(
            actor=privacy_admin,
            customer=customers[0],
            purpose="Legal claims: a dispute in court",
            source="request",
        )
    elif whole_kind:
        services.hold_place(
            actor=privacy_admin, covers="consent_events", reason="Regulator inquiry."
        )
    else:
        services.hold_place(
            actor=privacy_admin, customer=customers[0], reason="Litigation hold."
        )

    policy = RetentionPolicy.objects.get(code="consent-proof")
    scope = SCOPES[policy.covers]
    period = timedelta(days=policy.period_days)
    held = _held_filter(policy, now)

    def clock(days: int):
        return scope.clock(policy, before=now + timedelta(days=days) - period)

    events = ConsentEvent.objects.all()
    expected = {
        "held": events.count(),
        **{
            f"due_{d}": events.filter(clock(d)).exclude(clock(0)).count()
            for d in (30, 60, 90)
        },
        "overdue": events.filter(clock(0)).exclude(held).count(),
        "on_hold": events.filter(clock(0)).filter(held).count(),
    }
    report = {p["code"]: p for p in retention_report(at=now)["policies"]}
    got = {key: report["consent-proof"][key] for key in expected}
    assert got == expected
    # Not a vacuous match: two events (grant, withdrawal) per withdrawn customer.
    ages = (1900, 1826, 1820, 1790, 1760, 1700, 10)
    days = policy.period_days
    assert expected["overdue"] + expected["on_hold"] == 2 * sum(a >= days for a in ages)
    assert expected["due_90"] == 2 * sum(days - 90 <= a < days for a in ages) > 0
    assert expected["on_hold"] > 0
