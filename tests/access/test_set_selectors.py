"""What access offers the apps above for set-based work over its tables (monitoring's
rules, retention's disposal, a customer's export), and its one access-log writer."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.access.models import AccessLogEntry, AccessPurpose, Reveal, RevealStatus
from apps.access.selectors import (
    AssignedCustomer,
    access_log_list,
    access_log_list_for_subject,
    access_log_written_filter,
    customer_get_for_staff,
    customer_of,
    interaction_closed_filter,
    interaction_list_closed,
    interaction_list_for_customer,
    reveal_list_granted,
)
from apps.access.services import AccessLogRow, access_log_write, access_log_write_full
from apps.accounts.models import Role
from tests.access.factories import assign, assign_then_close
from tests.accounts.factories import UserFactory
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


def _reveal(staff, customer, status: str, *, minutes_ago: int = 0) -> Reveal:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    return Reveal.objects.create(
        staff=staff,
        customer=customer,
        fields=["email"],
        reason="Customer called back",
        status=status,
        created_at=at,
        expires_at=at + timedelta(minutes=5),
    )


def test_the_access_log_list_narrows_by_window_staff_and_purpose(support_agent):
    other = UserFactory(username="other", role=Role.SUPPORT_AGENT)
    customer = make_customer()
    now = timezone.now()
    access_log_write(
        actor=support_agent,
        entries=[AccessLogRow(customer.pk, {"email": "masked"}, AccessPurpose.SEARCH)],
        at=now - timedelta(hours=2),
    )
    access_log_write(
        actor=support_agent,
        entries=[AccessLogRow(customer.pk, {"email": "full"}, AccessPurpose.SEARCH)],
        at=now,
    )
    access_log_write(
        actor=other,
        entries=[AccessLogRow(customer.pk, {"email": "masked"}, "support_case")],
        at=now,
    )
    recent = now - timedelta(hours=1)

    assert access_log_list().count() == 3
    assert access_log_list(since=recent, until=now).count() == 2
    assert access_log_list(since=recent, staff_id=support_agent.pk).count() == 1
    assert access_log_list(staff_ids=[support_agent.pk, other.pk]).count() == 3
    assert access_log_list(purpose=AccessPurpose.SEARCH).count() == 2


def test_granted_reveals_count_suspended_ones_not_refused_or_outside_the_window(
    support_agent,
):
    customer = make_customer()
    granted = _reveal(support_agent, customer, RevealStatus.GRANTED)
    suspended = _reveal(support_agent, customer, RevealStatus.SUSPENDED)
    _reveal(support_agent, customer, RevealStatus.REFUSED)
    _reveal(support_agent, customer, RevealStatus.GRANTED, minutes_ago=90)
    now = timezone.now()

    found = reveal_list_granted(since=now - timedelta(hours=1), until=now)

    assert set(found.values_list("pk", flat=True)) == {granted.pk, suspended.pk}
    assert not reveal_list_granted(
        since=now - timedelta(hours=1), until=now, staff_id=support_agent.pk + 1
    ).exists()


def test_granted_reveals_by_role_leave_out_staff_who_left(support_agent):
    customer = make_customer()
    left = UserFactory(username="left", role=Role.SUPPORT_AGENT, is_active=False)
    delivery = UserFactory(username="courier", role=Role.DELIVERY_AGENT)
    mine = _reveal(support_agent, customer, RevealStatus.GRANTED)
    _reveal(left, customer, RevealStatus.GRANTED)
    _reveal(delivery, customer, RevealStatus.GRANTED)
    now = timezone.now()

    found = reveal_list_granted(
        since=now - timedelta(hours=1), until=now, roles={Role.SUPPORT_AGENT}
    )

    assert list(found.values_list("pk", flat=True)) == [mine.pk]


def test_closed_interactions_and_a_customers_interactions_newest_first(support_agent):
    customer = make_customer()
    closed = assign_then_close(support_agent, customer)
    open_one = assign(support_agent, customer)
    assign(support_agent, make_customer())  # another customer's

    assert list(interaction_list_closed()) == [closed]
    assert list(interaction_list_for_customer(customer=customer)) == [open_one, closed]


def test_retentions_clocks_start_when_a_row_was_written_or_a_case_closed_inclusive(
    support_agent,
):
    customer = make_customer()
    now = timezone.now()
    for hours in (2, 0):
        access_log_write(
            actor=support_agent,
            entries=[AccessLogRow(customer.pk, {"email": "masked"}, "search")],
            at=now - timedelta(hours=hours),
        )
    closed = assign_then_close(support_agent, customer)
    assign(support_agent, make_customer())  # open: no clock yet

    def written(before) -> int:
        rows = access_log_list().filter(access_log_written_filter(before=before))
        return rows.count()

    assert written(now) == 2
    assert written(now - timedelta(hours=1)) == 1
    assert written(now - timedelta(hours=3)) == 0
    by_close = interaction_closed_filter(before=closed.closed_at)
    assert list(interaction_list_closed().filter(by_close)) == [closed]
    before_close = interaction_closed_filter(
        before=closed.closed_at - timedelta(microseconds=1)
    )
    assert not interaction_list_closed().filter(before_close).exists()


def test_the_subjects_view_of_their_access_log_names_no_one(support_agent):
    customer = make_customer()
    now = timezone.now()
    looks = ((5, AccessPurpose.SEARCH), (0, AccessPurpose.SUPPORT_CASE))
    for minutes, purpose in looks:
        access_log_write(
            actor=support_agent,
            entries=[AccessLogRow(customer.pk, {"email": "masked"}, purpose)],
            at=now - timedelta(minutes=minutes),
        )

    rows = list(access_log_list_for_subject(customer=customer))

    assert rows == [
        (now, Role.SUPPORT_AGENT, AccessPurpose.SUPPORT_CASE, {"email": "masked"}),
        (
            now - timedelta(minutes=5),
            Role.SUPPORT_AGENT,
            AccessPurpose.SEARCH,
            {"email": "masked"},
        ),
    ]


def test_a_value_shown_in_full_elsewhere_is_one_governance_row(privacy_admin):
    customer = make_customer()

    access_log_write_full(
        actor=privacy_admin, customer_id=customer.pk, fields=["request_details"]
    )

    entry = AccessLogEntry.objects.get()
    assert (entry.staff, entry.staff_role, entry.customer_id) == (
        privacy_admin,
        Role.PRIVACY_ADMIN,
        customer.pk,
    )
    assert entry.fields == {"request_details": "full"}
    assert entry.purpose == AccessPurpose.GOVERNANCE
    assert (entry.interaction_id, entry.reveal_id) == (None, None)


def test_an_agents_customer_comes_typed_and_unwraps_to_the_model(
    support_agent, privacy_admin
):
    customer = make_customer()
    interaction = assign(support_agent, customer)

    found = customer_get_for_staff(actor=support_agent, customer_id=customer.pk)

    assert isinstance(found, AssignedCustomer)
    assert found.pk == customer.pk
    assert found.open_interaction_id == interaction.pk
    assert customer_of(found) == customer
    plain = customer_get_for_staff(actor=privacy_admin, customer_id=customer.pk)
    assert customer_of(plain) is plain
