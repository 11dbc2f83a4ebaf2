from datetime import UTC, datetime, timedelta

import pytest

from apps.access.models import AccessLogEntry
from apps.portal.selectors import VISIT_GAP, access_history_grouped
from tests.portal.factories import make_account

pytestmark = pytest.mark.django_db

START = datetime(2026, 12, 1, 16, 44, tzinfo=UTC)


def read(
    customer, staff, minutes: float, *, role="support_agent", purpose="support_case"
):
    AccessLogEntry.objects.create(
        staff=staff,
        staff_role=role,
        customer=customer,
        fields={"email": "masked"},
        purpose=purpose,
        created_at=START + timedelta(minutes=minutes),
    )


def test_one_support_session_is_one_row_with_its_count_and_range(support_agent):
    customer = make_account()
    for minute in range(10):
        read(customer, support_agent, minute)

    [visit] = access_history_grouped(customer=customer)

    assert visit.count == 10
    assert (visit.first, visit.last) == (START, START + timedelta(minutes=9))
    assert visit.who == "A support agent"
    assert visit.why == "your support case"


def test_another_role_purpose_or_a_long_pause_starts_a_new_row(
    support_agent, delivery_agent
):
    customer = make_account()
    read(customer, support_agent, 0)
    read(customer, support_agent, 5)
    read(customer, delivery_agent, 6, role="delivery_agent", purpose="delivery")
    read(customer, support_agent, 7)
    read(customer, support_agent, 8, purpose="search")
    gap = VISIT_GAP.total_seconds() / 60
    read(customer, support_agent, 8 + gap + 1, purpose="search")

    visits = access_history_grouped(customer=customer)

    # Newest first.
    assert [(v.role, v.purpose, v.count) for v in visits] == [
        ("support_agent", "search", 1),
        ("support_agent", "search", 1),
        ("support_agent", "support_case", 1),
        ("delivery_agent", "delivery", 1),
        ("support_agent", "support_case", 2),
    ]


def test_the_list_stops_at_the_limit(support_agent):
    customer = make_account()
    for n in range(5):
        read(customer, support_agent, n * 60)
    assert len(access_history_grouped(customer=customer, limit=3)) == 3


def test_another_customer_s_reads_are_not_listed(support_agent):
    customer, other = make_account(), make_account(email="other@example.com")
    read(other, support_agent, 0)
    assert access_history_grouped(customer=customer) == []


def test_two_staff_members_of_one_role_are_two_visits_neither_named(support_agent):
    from tests.accounts.factories import UserFactory

    other_agent = UserFactory(username="agent-two", role="support_agent")
    customer = make_account()
    read(customer, support_agent, 0)
    read(customer, support_agent, 1)
    read(customer, other_agent, 2)

    visits = access_history_grouped(customer=customer)

    assert [(v.who, v.count) for v in visits] == [
        ("A support agent", 1),
        ("A support agent", 2),
    ]
    assert "agent-two" not in repr(visits)
