"""The cockpit's overdue count per retention policy is the retention report's, read
in two queries whatever the number of policies, and through an index on each policy's
clock rather than a scan of every row the policy covers."""

from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.retention.models import Covers, RetentionPolicy
from apps.retention.selectors import (
    disposal_run_last,
    policy_overdue_counts,
    retention_report,
)
from apps.retention.services import hold_place
from tests.compliance.cockpit_data import overdue_everywhere
from tests.retention.factories import aged_customer
from tests.retention.test_query_counts import grow

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def report_overdue() -> dict[str, int]:
    return {p["code"]: p["overdue"] for p in retention_report()["policies"]}


def cockpit_overdue() -> dict[str, int]:
    return {policy.code: n for policy, n in policy_overdue_counts()}


def test_the_overdue_counts_are_the_reports(support_agent, privacy_admin):
    overdue_everywhere(agent=support_agent, admin=privacy_admin, extra=2)
    ours = cockpit_overdue()
    assert ours == report_overdue()
    # Something is overdue under every policy in this data.
    assert all(ours.values()), ours
    assert list(ours) == [p["code"] for p in retention_report()["policies"]]


def test_a_hold_on_a_whole_kind_leaves_nothing_of_it_overdue(
    support_agent, privacy_admin
):
    overdue_everywhere(agent=support_agent, admin=privacy_admin)
    hold_place(
        actor=privacy_admin, reason="Regulator's inquiry.", covers=Covers.ACCESS_LOG
    )
    ours = cockpit_overdue()
    assert ours["access-log"] == 0
    assert ours == report_overdue()


def test_disabled_policies_are_left_out(support_agent, privacy_admin):
    aged_customer(closed_days_ago=800)
    RetentionPolicy.objects.filter(code="closed-accounts").update(enabled=False)
    ours = cockpit_overdue()
    assert "closed-accounts" not in ours
    assert ours == report_overdue()


def test_an_erased_customer_is_not_overdue(privacy_admin):
    customer = aged_customer(closed_days_ago=800)
    assert cockpit_overdue()["closed-accounts"] == 1
    type(customer).objects.filter(pk=customer.pk).update(erased_at=timezone.now())
    assert cockpit_overdue()["closed-accounts"] == 0
    assert cockpit_overdue() == report_overdue()


def test_a_fixed_number_of_queries_whatever_the_number_of_policies(
    support_agent, privacy_admin, django_assert_num_queries, on_postgres
):
    # PostgreSQL: the policies, the clock histograms, the kinds held whole, and every
    # policy's rows of its bound's day and of its held customers (4). Elsewhere: the
    # policies, and every policy's due rows (2).
    queries = 4 if on_postgres else 2
    overdue_everywhere(agent=support_agent, admin=privacy_admin)
    with django_assert_num_queries(queries):
        policy_overdue_counts()
    template = RetentionPolicy.objects.get(code="access-log")
    for days in (30, 60, 90):
        template.pk, template.code, template.period_days = None, f"log-{days}", days
        template.save()
    with django_assert_num_queries(queries):
        counts = dict((p.code, n) for p, n in policy_overdue_counts())
    assert counts["log-30"] >= counts["access-log"]
    assert counts == report_overdue()


def test_no_enabled_policy_no_query(django_assert_num_queries):
    RetentionPolicy.objects.update(enabled=False)
    with django_assert_num_queries(1):
        assert policy_overdue_counts() == []


def test_the_last_run_and_what_it_disposed(support_agent, privacy_admin):
    assert disposal_run_last() is None
    grow([], 3, agent=support_agent, admin=privacy_admin)  # runs once
    run = disposal_run_last()
    assert run is not None
    assert run.status == "completed"
    assert run.records > 0


@pytest.mark.parametrize(
    ("code", "column"),
    [
        ("inactive-customers", "last_activity_at"),
        ("customer-notes", "created_at"),
        ("access-log", "created_at"),
    ],
)
def test_each_clock_has_an_index(code, column):
    """Each policy's clock is indexed, so that its overdue count reads only the due
    rows (closed accounts: the (status, closed_at) index; consent: the states'
    updated_at; interactions: (closed_at, expires_at))."""
    table = {"access-log": "access_accesslogentry"}.get(code, "customers_customer")
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [table])
        definitions = [row[0] for row in cursor.fetchall()]
    assert any(f"({column})" in d for d in definitions), definitions


def test_the_clock_boundary_is_the_reports(privacy_admin):
    period = RetentionPolicy.objects.get(code="closed-accounts").period_days
    aged_customer(closed_days_ago=period + 1)
    aged_customer(closed_days_ago=period - 1)
    assert cockpit_overdue()["closed-accounts"] == 1
    at = timezone.now() + timedelta(days=2)
    assert (
        dict((p.code, n) for p, n in policy_overdue_counts(at=at))["closed-accounts"]
        == 2
    )
