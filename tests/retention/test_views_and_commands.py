import io
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteWrapper
from django.urls import reverse

from apps.accounts.models import Role
from apps.audit.models import AuditEvent
from apps.retention.models import (
    DisposalRun,
    LegalHold,
    RetentionPolicy,
)
from apps.retention.selectors import _held_customer_ids, holds_active
from tests.accounts.factories import UserFactory
from tests.accounts.helpers import sign_in
from tests.retention.factories import aged_customer, policy_form_data

pytestmark = pytest.mark.django_db


def test_purge_expired_dry_run_then_run_print_a_summary_table():
    aged_customer(closed_days_ago=800)
    out = io.StringIO()
    call_command("purge_expired", "--dry-run", stdout=out, stderr=io.StringIO())
    assert "closed-accounts" in out.getvalue()
    assert "Dry run: nothing was changed." in out.getvalue()
    out = io.StringIO()
    call_command("purge_expired", "--batch-size", "5", stdout=out, stderr=io.StringIO())
    assert "completed, 1 rows disposed" in out.getvalue()


def test_purge_expired_refuses_a_bad_batch_size():
    with pytest.raises(CommandError, match="at least 1"):
        call_command("purge_expired", "--batch-size", "0", stdout=io.StringIO())


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_retention_report_command(tmp_path, fmt):
    aged_customer(closed_days_ago=800)
    path = tmp_path / f"report.{fmt}"
    call_command(
        "retention_report", "--format", fmt, "--output", str(path), stderr=io.StringIO()
    )
    body = path.read_text()
    if fmt == "json":
        report = json.loads(body)
        closed = next(p for p in report["policies"] if p["code"] == "closed-accounts")
        assert set(closed) == {
            "code",
            "covers",
            "action",
            "period_days",
            "held",
            "due_30",
            "due_60",
            "due_90",
            "overdue",
            "on_hold",
            "disposed_total",
        }
        assert closed["overdue"] == 1
    else:
        assert body.splitlines()[0].startswith("code,covers,action,period_days,held")


def test_report_page_has_the_chart_and_downloads(client, compliance_officer):
    aged_customer(closed_days_ago=800)
    sign_in(client, compliance_officer)
    page = client.get(reverse("retention:report"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "<svg" in html
    assert "overdue" in html
    csv_response = client.get(reverse("retention:report"), {"format": "csv"})
    assert csv_response["Content-Type"] == "text/csv"
    json_response = client.get(reverse("retention:report"), {"format": "json"})
    assert json.loads(json_response.content)["policies"]


@pytest.mark.parametrize(
    "role", [Role.SUPPORT_AGENT, Role.DELIVERY_AGENT, Role.CUSTOMER]
)
def test_report_is_for_compliance_roles(client, role):
    sign_in(client, UserFactory(username="u", role=role))
    assert client.get(reverse("retention:report")).status_code == 403


def test_privacy_admin_edits_a_policy_with_an_audit_event(client, privacy_admin):
    sign_in(client, privacy_admin)
    policy = RetentionPolicy.objects.get(code="access-log")
    data = policy_form_data(policy, period_days=400)
    response = client.post(reverse("retention:policy-edit", args=["access-log"]), data)
    assert response.status_code == 302
    assert RetentionPolicy.objects.get(code="access-log").period_days == 400
    event = AuditEvent.objects.get(action="retention.policy_changed")
    assert event.details["changed"] == ["period_days"]


def test_a_policy_with_an_impossible_trigger_is_refused(client, privacy_admin):
    sign_in(client, privacy_admin)
    data = {
        "covers": "access_log",
        "period_days": 30,
        "trigger": "closed",
        "action": "delete",
        "legal_basis": "x",
        "description": "y",
    }
    response = client.post(reverse("retention:policy-edit", args=["access-log"]), data)
    assert response.status_code == 400
    assert "does not apply" in response.content.decode()


def test_compliance_officers_cannot_edit_policies(client, compliance_officer):
    sign_in(client, compliance_officer)
    assert (
        client.get(reverse("retention:policy-edit", args=["access-log"])).status_code
        == 403
    )


def test_holds_are_placed_and_released_on_the_page(client, privacy_admin):
    customer = aged_customer()
    sign_in(client, privacy_admin)
    response = client.post(
        reverse("retention:holds"),
        {"customer": str(customer.pk), "reason": "Court order 12/2026 preserve"},
    )
    assert response.status_code == 302
    hold = LegalHold.objects.get()
    client.post(reverse("retention:hold-release", args=[hold.pk]))
    hold.refresh_from_db()
    assert hold.released_by == privacy_admin
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"legal_hold.placed", "legal_hold.released"} <= actions


def test_a_hold_needs_exactly_one_scope(client, privacy_admin):
    sign_in(client, privacy_admin)
    response = client.post(
        reverse("retention:holds"), {"reason": "no scope given at all"}
    )
    assert response.status_code == 400
    assert not LegalHold.objects.exists()


def test_the_public_data_policy_lists_the_enabled_policies(client):
    RetentionPolicy.objects.filter(code="interactions").update(enabled=False)
    html = client.get(reverse("data-policy")).content.decode()
    assert "destroy the key that encrypts them" in html
    assert "deleted one year after they close" not in html
    assert "Sharing with partners" in html


def test_the_public_data_policy_says_periods_and_clocks_exactly(client):
    RetentionPolicy.objects.filter(code="customer-notes").update(period_days=548)
    html = client.get(reverse("data-policy")).content.decode()
    assert "2 years after your account was closed" in html
    assert "548 days after your account was opened" in html  # not "2 years"
    assert "3 years after your details were last entered or changed" in html
    assert "1 year after each look was recorded" in html
    assert "5 years after you withdrew the consent" in html
    assert "1 year after the case or delivery closed" in html


def test_only_consent_purposes_say_they_need_agreement(client):
    from apps.consent.models import Purpose

    Purpose.objects.filter(code="analytics").update(legal_basis="legitimate_interest")
    html = client.get(reverse("data-policy")).content.decode()
    assert "(legal basis: legitimate interest)" in html
    assert "(legal basis: consent; only with your agreement)" in html


def test_the_report_says_when_and_in_which_zone_the_nightly_run_is(
    client, compliance_officer, settings
):
    settings.TIME_ZONE = "Asia/Jakarta"
    settings.AMANAH_DISPOSAL_AT = "03:15"
    aged_customer(closed_days_ago=800)
    sign_in(client, compliance_officer)
    html = client.get(reverse("retention:report")).content.decode()
    assert " overdue (past " in html
    assert "The nightly run (Celery beat) at 03:15 (Asia/Jakarta)" in html
    assert "Started (Asia/Jakarta)" in html
    assert "has not run, or failed" not in html


def test_the_hold_form_names_the_zone_its_end_is_read_in(settings):
    from apps.retention.forms import HoldForm

    settings.TIME_ZONE = "Asia/Jakarta"
    assert HoldForm().fields["ends_at"].label == "Ends (optional, Asia/Jakarta)"


def test_the_chart_ends_with_the_current_month():
    from datetime import UTC, datetime

    from apps.retention.selectors import disposed_per_month

    months = disposed_per_month(at=datetime(2026, 11, 24, tzinfo=UTC))
    assert months[0]["month"] == "2025-12"
    assert months[-1]["month"] == "2026-11"
    assert len(months) == 12


CLOSED_PORT = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def test_purge_expired_says_when_the_broker_cannot_be_reached(settings, monkeypatch):
    from tests.brokers import celery_app

    aged_customer(closed_days_ago=800)
    with (
        celery_app(CLOSED_PORT, "amanah-test-nowhere", settings, monkeypatch),
        pytest.raises(CommandError) as refused,
    ):
        call_command("purge_expired", stdout=io.StringIO(), stderr=io.StringIO())
    assert str(refused.value).startswith(
        "Cannot reach the broker at redis://127.0.0.1:1/0 ("
    )
    assert str(refused.value).endswith(
        "); check CELERY_BROKER_URL, or run the disposal here with --here."
    )
    assert not DisposalRun.objects.exists()


def test_purge_expired_here_needs_no_worker_nor_broker(settings, monkeypatch):
    from tests.brokers import celery_app

    aged_customer(closed_days_ago=800)
    out = io.StringIO()
    with celery_app(CLOSED_PORT, "amanah-test-nowhere", settings, monkeypatch):
        call_command("purge_expired", "--here", stdout=out, stderr=io.StringIO())
    assert "completed, 1 rows disposed (1 customers)." in out.getvalue()


def test_the_held_customers_compile_on_sqlite_the_demo_database():
    """`make run` uses SQLite, which allows no ORDER BY in the parts of a UNION: the
    report's held customers (holds and restrictions) must carry none."""
    sqlite = SQLiteWrapper({**connection.settings_dict, "NAME": ":memory:"})
    query = _held_customer_ids(holds_active()).query
    sql, _ = query.get_compiler(connection=sqlite).as_sql()
    assert "UNION" in sql
    assert "ORDER BY" not in sql
