"""The agents' list query: one statement for grant, open interaction, live reveals and
data keys, and the same answers as the general path."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from guardian.shortcuts import remove_perm

from apps.access.models import Interaction, Reveal, RevealStatus
from apps.access.selectors import (
    VIEW_CUSTOMER,
    access_context,
    customer_get_for_staff,
    customer_search_for_staff,
    customers_assigned_list,
    interaction_current_for,
    live_reveals_of,
    view_customer_permission_id,
)
from apps.access.services import customers_read, reveal_open
from apps.accounts.models import Role
from apps.core.errors import NotFound
from apps.crypto.keys import key_scope
from tests.access.factories import assign, assign_then_close, assign_then_expire
from tests.accounts.factories import UserFactory
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


def _reveal(agent, customer, fields):
    reveal, _ = reveal_open(
        actor=agent, customer=customer, fields=fields, reason="Customer called back"
    )
    return reveal


def test_lists_only_customers_with_a_grant_and_an_open_interaction(support_agent):
    mine = [make_customer() for _ in range(3)]
    for customer in mine:
        assign(support_agent, customer)
    closed, expired, ungranted, theirs = (make_customer() for _ in range(4))
    assign_then_close(support_agent, closed)
    assign_then_expire(support_agent, expired)
    assign(support_agent, ungranted)
    remove_perm(VIEW_CUSTOMER, support_agent, ungranted)  # grant gone, case open
    assign(UserFactory(username="other", role=Role.SUPPORT_AGENT), theirs)

    listed = customers_assigned_list(support_agent)

    expected = sorted(mine, key=lambda c: (-c.created_at.timestamp(), str(c.pk)))
    assert [c.pk for c in listed] == [c.pk for c in expected]


def test_each_row_carries_its_oldest_open_interaction(support_agent):
    customer = make_customer()
    first = assign(support_agent, customer)
    assign(support_agent, customer)  # a second open case on the same customer
    Interaction.objects.filter(pk=first.pk).update(
        opened_at=timezone.now() - timedelta(hours=1)
    )

    [row] = customers_assigned_list(support_agent)

    assert row.open_interaction_id == first.pk
    assert row.open_interaction_kind == first.kind


@pytest.mark.postgres  # the one-statement list is PostgreSQL's
def test_live_reveals_are_summed_per_customer_and_end_when_they_expire(
    support_agent,
):
    customer, other = make_customer(), make_customer()
    assign(support_agent, customer)
    assign(support_agent, other)
    older = _reveal(support_agent, customer, ["email"])
    newer = _reveal(support_agent, customer, ["phone"])
    Reveal.objects.filter(pk=older.pk).update(
        created_at=timezone.now() - timedelta(minutes=2)
    )
    Reveal.objects.create(  # refused reveals open nothing
        staff=support_agent,
        customer=other,
        fields=["email"],
        reason="refused",
        status=RevealStatus.REFUSED,
        created_at=timezone.now(),
        expires_at=timezone.now() + timedelta(minutes=5),
    )

    rows = {c.pk: c for c in customers_assigned_list(support_agent)}

    live = rows[customer.pk].live_reveals
    assert live.fields == {"email", "phone"}
    assert live.latest_id == newer.pk
    assert live.expires_at == max(older.expires_at, newer.expires_at)
    assert rows[other.pk].live_reveals is None

    Reveal.objects.filter(staff=support_agent).update(expires_at=timezone.now())
    [row] = [c for c in customers_assigned_list(support_agent) if c.pk == customer.pk]
    assert row.live_reveals is None


@pytest.mark.parametrize("path", ["list", "general"])
def test_each_field_ends_with_the_last_reveal_that_opened_it(support_agent, path):
    customer = make_customer()
    assign(support_agent, customer)
    first = _reveal(support_agent, customer, ["email"])
    second = _reveal(support_agent, customer, ["phone"])
    third = _reveal(support_agent, customer, ["email"])
    now = timezone.now()
    ends = {
        first.pk: now + timedelta(minutes=4),
        second.pk: now + timedelta(minutes=9),
        third.pk: now + timedelta(minutes=6),
    }
    for pk, end in ends.items():
        Reveal.objects.filter(pk=pk).update(expires_at=end)

    if path == "list":
        [row] = customers_assigned_list(support_agent)
        live = row.live_reveals
    else:
        context = access_context(actor=support_agent, customer_ids=[customer.pk])
        live = live_reveals_of(context.reveals[customer.pk])

    assert live.ends() == {"email": ends[third.pk], "phone": ends[second.pk]}
    assert live.expires_at == ends[second.pk]
    assert live.latest_id == third.pk
    assert live.latest_id_of({"phone"}) == second.pk
    assert live.latest_id_of({"email", "phone"}) == third.pk
    assert live.latest_id_of({"full_name"}) is None


def test_the_list_narrows_to_the_customers_asked_for(support_agent):
    wanted, other = make_customer(), make_customer()
    assign(support_agent, wanted)
    assign(support_agent, other)

    listed = customers_assigned_list(support_agent, customer_ids=[wanted.pk])

    assert [c.pk for c in listed] == [wanted.pk]
    assert customers_assigned_list(support_agent, customer_ids=[]) == []


@pytest.mark.postgres  # the one-statement list is PostgreSQL's
def test_another_agents_reveal_opens_nothing_for_this_one(support_agent):
    customer = make_customer()
    colleague = UserFactory(username="colleague", role=Role.SUPPORT_AGENT)
    assign(support_agent, customer)
    assign(colleague, customer)
    _reveal(colleague, customer, ["email"])

    [row] = customers_assigned_list(support_agent)

    assert row.live_reveals is None


@pytest.mark.postgres  # the one-statement list is PostgreSQL's
def test_the_list_reads_as_the_general_path_does(support_agent):
    customers = [make_customer() for _ in range(3)]
    for customer in customers:
        assign(support_agent, customer)
    _reveal(support_agent, customers[1], ["email", "phone"])

    with key_scope():
        fast = customers_read(
            actor=support_agent, customers=customers_assigned_list(support_agent)
        )
    # Plain model instances: interactions and reveals come from access_context.
    plain = sorted(customers, key=lambda c: (-c.created_at.timestamp(), str(c.pk)))
    with key_scope():
        general = customers_read(actor=support_agent, customers=plain)

    assert fast == general
    assert any(view.get("reveal_expires_at") for view in fast)


@pytest.mark.postgres  # the one-statement list is PostgreSQL's
def test_reading_the_list_needs_the_list_query_the_policy_and_the_log_insert(
    support_agent,
):
    def queries(n: int) -> list[str]:
        for _ in range(n):
            assign(support_agent, make_customer())
        with key_scope(), CaptureQueriesContext(connection) as captured:
            customers_read(
                actor=support_agent, customers=customers_assigned_list(support_agent)
            )
        return [q["sql"] for q in captured.captured_queries]

    view_customer_permission_id()  # looked up once per process, then remembered
    few, many = queries(2), queries(8)
    # The list, the policy, the active restrictions among them, the log insert.
    assert len(few) == len(many) == 4
    assert not [sql for sql in many if "FROM crypto_datakey WHERE" in sql]


@pytest.mark.postgres  # the one-statement read is PostgreSQL's
def test_an_agents_customer_comes_with_what_reading_it_needs(
    support_agent, django_assert_num_queries
):
    customer = make_customer()
    first = assign(support_agent, customer)
    assign(support_agent, customer)
    Interaction.objects.filter(pk=first.pk).update(
        opened_at=timezone.now() - timedelta(hours=1)
    )
    _reveal(support_agent, customer, ["email"])
    first.refresh_from_db()
    view_customer_permission_id()  # looked up once per process, then remembered

    with key_scope():
        with django_assert_num_queries(1):
            found = customer_get_for_staff(
                actor=support_agent, customer_id=str(customer.pk)
            )
            interaction = interaction_current_for(actor=support_agent, customer=found)
        # The policy, the customer's active restrictions and the access-log insert:
        # no interaction, reveal or key lookup.
        with django_assert_num_queries(3):
            [view] = customers_read(actor=support_agent, customers=[found])

    assert found.pk == customer.pk
    assert (interaction.pk, interaction.kind) == (first.pk, first.kind)
    assert interaction.expires_at == first.expires_at
    assert interaction.contact_alias == first.contact_alias
    assert view["shown"]["email"] == "full"  # the live reveal


@pytest.mark.postgres  # elsewhere the queryset's lookup decides
@pytest.mark.parametrize("customer_id", ["not-a-uuid", 12345, None])
def test_a_malformed_customer_id_is_not_found(support_agent, customer_id):
    assign(support_agent, make_customer())
    with pytest.raises(NotFound):
        customer_get_for_staff(actor=support_agent, customer_id=customer_id)


def test_the_current_interaction_of_a_plain_row_is_looked_up(support_agent):
    customer = make_customer()
    interaction = assign(support_agent, customer)
    assert interaction_current_for(actor=support_agent, customer=customer) == (
        interaction
    )
    assert interaction_current_for(actor=support_agent, customer=make_customer()) is (
        None
    )


def test_a_delivery_agents_search_is_narrowed_to_their_assignments(delivery_agent):
    wanted = make_customer(email="ana@example.com")
    assign(delivery_agent, wanted)
    assign(delivery_agent, make_customer())
    make_customer(email="ana2@example.com")

    found = customer_search_for_staff(actor=delivery_agent, email="ana@example.com")
    unassigned = customer_search_for_staff(
        actor=delivery_agent, email="ana2@example.com"
    )

    assert [c.pk for c in found.customers] == [wanted.pk]
    assert list(unassigned.customers) == []
