"""The retention report answers in a fixed number of queries, however many records are
held, due, overdue, on hold or disposed: each test measures a small data set, grows it
tenfold and measures again under the same bound. (It grows with the policies, one
aggregate each, which is the report's shape, not its data.)"""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.access.services import customers_read
from apps.consent.models import ConsentSource, ConsentState
from apps.retention.selectors import retention_report
from apps.retention.services import hold_place, purge_run
from tests.access.factories import assign
from tests.accounts.helpers import sign_in
from tests.consent.factories import consent_answer
from tests.retention.factories import aged_customer

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

SIZES = (3, 30)


def grow(made: list, size: int, *, agent, admin) -> int:
    """Add records until `size` of each kind are held: accounts closed long ago (one
    run disposes of them), accounts falling due within 30 to 90 days, inactive ones,
    old notes, withdrawn consents, read customers' access-log entries and
    interactions; then more overdue accounts, one of them held. Returns how many of
    each kind were added."""
    added = []
    while len(made) + len(added) < size:
        added.append(aged_customer(closed_days_ago=800))
        aged_customer(closed_days_ago=680)
        aged_customer(inactive_days=1100)
        noted = aged_customer(created_days_ago=800, notes="Call after the holidays.")
        for granted in (True, False):
            consent_answer(
                noted, "marketing_sms", granted, source=ConsentSource.SELF_SERVICE
            )
        assign(agent, noted)
        customers_read(actor=agent, customers=[noted])
    ConsentState.objects.filter(granted=False).update(
        updated_at=timezone.now() - timedelta(days=1800)
    )
    purge_run(actor=None, batch_size=10)
    overdue = [aged_customer(closed_days_ago=800) for _ in added]
    hold_place(actor=admin, reason="Litigation about a refund.", customer=overdue[0])
    made.extend(added)
    return len(added)


def test_the_report_page_does_not_grow_with_the_records(
    client,
    compliance_officer,
    support_agent,
    privacy_admin,
    django_assert_max_num_queries,
):
    sign_in(client, compliance_officer)
    made: list = []
    for size in SIZES:
        grow(made, size, agent=support_agent, admin=privacy_admin)
        client.get(reverse("retention:report"))  # stamps the session's last-seen time
        # The session, the user and their second-factor device (3); the report (at
        # most 15, as below); the months' totals; the runs with their progress and
        # its policies (3).
        with django_assert_max_num_queries(22):
            response = client.get(reverse("retention:report"))
        assert response.status_code == 200


def test_the_report_does_not_grow_with_the_records(
    support_agent, privacy_admin, django_assert_max_num_queries
):
    made: list = []
    for runs, size in enumerate(SIZES, 1):
        added = grow(made, size, agent=support_agent, admin=privacy_admin)
        # On PostgreSQL five: the policies, the clock histograms, the kinds of
        # record held whole, every policy's rows of its bounds' days and of its held
        # customers (one statement), the disposed totals. Elsewhere: the disposed
        # totals and the policies (2); per policy (6) whether a hold covers its
        # whole kind of record and one aggregate of every window (12); the consent
        # events held, counted apart from the withdrawals' join (1).
        with django_assert_max_num_queries(15):
            report = retention_report()
        closed = next(p for p in report["policies"] if p["code"] == "closed-accounts")
        # Each run disposed of the overdue accounts but the held one.
        assert (closed["overdue"], closed["on_hold"]) == (added - 1, runs)
