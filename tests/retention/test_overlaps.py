"""Policies that cover the same data: the dry run says what the run then disposes of,
per policy and in distinct customers, and each customer is disposed of once."""

import io

import pytest
from django.core.management import call_command

from apps.access.models import AccessLogEntry
from apps.audit.models import AuditEvent
from apps.customers.models import Customer
from apps.retention.models import RetentionPolicy
from apps.retention.selectors import disposal_run_tally, retention_report
from apps.retention.services import hold_place, purge_dry_run, purge_run
from tests.retention.factories import overlapping_customers

pytestmark = pytest.mark.django_db


def tally_numbers(tally) -> tuple[dict[str, tuple[int, int]], int]:
    per_policy = {
        line.policy.code: (line.rows, line.customers) for line in tally.policies
    }
    return per_policy, tally.customers


@pytest.mark.parametrize("closed_action", ["crypto_shred", "delete"])
def test_the_dry_run_says_per_policy_what_the_run_then_disposes_of(
    support_agent, privacy_admin, closed_action
):
    RetentionPolicy.objects.filter(code="closed-accounts").update(action=closed_action)
    customers = overlapping_customers(support_agent)
    hold_place(
        actor=privacy_admin, customer=customers["held"], reason="Litigation 2026-17."
    )

    forecast = purge_dry_run()
    result = purge_run(actor=None, batch_size=2)

    assert tally_numbers(disposal_run_tally(result.run)) == tally_numbers(forecast)
    # Each customer under the first policy in run order that covers their data: the
    # one closed and inactive is shredded (or deleted), not also anonymised; notes
    # go with the customer; a deleted customer's access log goes with them.
    per_policy, distinct = tally_numbers(forecast)
    deleted = closed_action == "delete"
    assert per_policy == {
        "closed-accounts": (3, 3),
        "inactive-customers": (2, 2),
        "customer-notes": (1, 1),
        "access-log": (2, 1) if deleted else (4, 2),
        "consent-proof": (0, 0),
        "interactions": (0, 0),
    }
    assert distinct == 6  # all but the held one, each once
    earlier = {line.policy.code: line.earlier for line in forecast.policies}
    assert earlier == {
        "closed-accounts": 0,
        "inactive-customers": 1,  # all_three
        "customer-notes": 3,  # all_three, closed_noted, inactive_noted
        "access-log": 1 if deleted else 0,  # all_three's entries, if deleted
        "consent-proof": 0,
        "interactions": 0,
    }
    assert forecast.overlapping == 3
    assert [line.policy.code for line in forecast.policies][:3] == [
        "closed-accounts",
        "inactive-customers",
        "customer-notes",
    ]
    held = Customer.objects.get(pk=customers["held"].pk)
    assert held.erased_at is None
    assert not AccessLogEntry.objects.filter(customer_id=customers["noted"].pk).exists()
    assert purge_dry_run().rows == 0  # nothing missed
    completed = AuditEvent.objects.get(action="disposal.run_completed").details
    assert completed["customers"] == distinct
    assert completed["disposed"] == {
        code: rows for code, (rows, _) in per_policy.items()
    }


def test_the_report_counts_each_policy_by_its_own_rule(support_agent):
    """Overdue under two policies shows under both; the run disposes of it once, and
    what each policy disposed of is what the dry run said."""
    overlapping_customers(support_agent)
    forecast = {line.policy.code: line.rows for line in purge_dry_run().policies}
    report = {p["code"]: p for p in retention_report()["policies"]}
    assert list(report) == list(forecast)  # run order
    # all_three and held (no hold placed here) are inactive too, shredded as closed.
    assert report["inactive-customers"]["overdue"] == 4
    assert forecast["inactive-customers"] == 2
    purge_run(actor=None, batch_size=5)
    after = {p["code"]: p for p in retention_report()["policies"]}
    assert all(p["overdue"] == 0 for p in after.values())
    assert {code: p["disposed_total"] for code, p in after.items()} == forecast


def test_purge_expired_prints_the_same_columns_and_explains_overlaps(support_agent):
    overlapping_customers(support_agent)
    dry = io.StringIO()
    call_command("purge_expired", "--dry-run", stdout=dry, stderr=io.StringIO())
    out = io.StringIO()
    call_command("purge_expired", stdout=out, stderr=io.StringIO())

    dry_lines, run_lines = dry.getvalue().splitlines(), out.getvalue().splitlines()
    assert dry_lines[0] == run_lines[0]  # the same columns
    assert dry_lines[1:8] == run_lines[1:8]  # per policy, then distinct customers
    assert "all policies" in dry_lines[7]
    assert dry_lines[7].split()[-3:] == ["11", "7", "distinct"]
    assert (
        "4 customers are due under more than one policy for the same data; each is "
        "disposed of once, under the first in the order above (not counted again "
        "under: inactive-customers 2, customer-notes 3)." in dry.getvalue()
    )
    assert "completed, 11 rows disposed (7 customers)." in out.getvalue()


def test_the_report_page_shows_each_run_s_distinct_customers(
    client, compliance_officer, support_agent
):
    from django.urls import reverse

    from tests.accounts.helpers import sign_in

    overlapping_customers(support_agent)
    run = purge_run(actor=None, batch_size=5).run
    sign_in(client, compliance_officer)
    html = client.get(reverse("retention:report")).content.decode()
    assert "a run disposes of it once,\n  under the first." in html
    assert f"#{run.pk}</td>" in html
    assert '<td class="num">7</td></tr>' in html  # 11 records of 7 customers
