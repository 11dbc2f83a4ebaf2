"""The desk lists each open interaction by what the role may see of the customer: the
name for support and delivery agents (and the drop-off address for delivery), where the
policy shows it in full; a short id where it does not. Only those fields, of only the
customers listed, are read, and reading them is logged like any other look (naming a
reveal only where one opened a field shown). The footnote names what is shown."""

import pytest
from django.urls import reverse

from apps.access import selectors
from apps.access.models import AccessLogEntry, FieldPolicy
from apps.access.services import reveal_open
from tests.access.factories import assign
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


def desk(client, user) -> str:
    sign_in(client, user)
    return client.get(reverse("staff:desk")).content.decode()


def test_a_support_agents_desk_names_the_customer(client, support_agent):
    customer = make_customer(full_name="Siti Rahma", address_line="Jl. Melati 9")
    assign(support_agent, customer)
    html = desk(client, support_agent)
    assert "Siti Rahma" in html
    assert f"Customer {str(customer.pk)[:8]}" not in html
    # Address is masked for support: the desk shows none of it, nor contact details.
    assert "Melati" not in html
    assert customer.email not in html


def test_a_delivery_agents_desk_names_the_customer_and_the_drop_off(
    client, delivery_agent
):
    customer = make_customer(
        full_name="Budi Santoso",
        address_line="Jl. Kenanga 4",
        postal_code="10110",
        city="Jakarta",
    )
    assign(delivery_agent, customer)
    html = desk(client, delivery_agent)
    assert "Budi Santoso" in html
    assert "Jl. Kenanga 4, 10110 Jakarta" in html


def test_the_names_shown_are_logged_with_the_interactions_purpose(
    client, delivery_agent
):
    customer = make_customer()
    assign(delivery_agent, customer)
    desk(client, delivery_agent)
    entry = AccessLogEntry.objects.get(customer=customer, staff=delivery_agent)
    assert entry.purpose == "delivery"
    assert set(entry.fields) == {"full_name", "address_line", "city", "postal_code"}


def test_a_name_the_policy_masks_is_not_on_the_desk(client, support_agent):
    FieldPolicy.objects.update_or_create(
        role="support_agent",
        category="identity",
        defaults={"visibility": "masked", "revealable": False},
    )
    customer = make_customer(full_name="Siti Rahma")
    assign(support_agent, customer)
    html = desk(client, support_agent)
    assert "Siti" not in html
    assert f"Customer {str(customer.pk)[:8]}…" in html
    assert not AccessLogEntry.objects.filter(staff=support_agent).exists()


def test_a_live_reveal_of_fields_the_desk_does_not_show_is_not_named_in_its_log(
    client, support_agent
):
    customer = make_customer(full_name="Siti Rahma")
    assign(support_agent, customer)
    reveal_open(
        actor=support_agent,
        customer=customer,
        fields=["email"],
        reason="Customer asked for a callback",
    )
    before = set(AccessLogEntry.objects.values_list("pk", flat=True))
    html = desk(client, support_agent)
    assert "Siti Rahma" in html
    assert customer.email not in html
    [entry] = AccessLogEntry.objects.exclude(pk__in=before)
    assert set(entry.fields) == {"full_name"}
    assert entry.reveal_id is None


def test_the_desk_fetches_only_the_customers_it_lists(
    client, support_agent, monkeypatch
):
    listed = make_customer()
    assign(support_agent, listed)
    asked = []
    fetch = selectors._customers_assigned

    def spy(actor, *, only_ids, **kwargs):
        asked.append(only_ids)
        return fetch(actor, only_ids=only_ids, **kwargs)

    monkeypatch.setattr(selectors, "_customers_assigned", spy)
    desk(client, support_agent)
    assert asked == [[listed.pk]]


def test_the_footnote_names_what_the_desk_shows(client, support_agent):
    assign(support_agent, make_customer(full_name="Siti Rahma"))
    html = desk(client, support_agent)
    assert "Names show because your role sees them in full" in html
    assert "addresses" not in html.split("Names show")[1].split("</p>")[0]

    FieldPolicy.objects.update_or_create(
        role="support_agent",
        category="address",
        defaults={"visibility": "full", "revealable": False},
    )
    html = desk(client, support_agent)
    assert "Names and addresses show because your role sees them in full" in html


def test_the_footnote_says_when_the_desk_shows_neither(client, support_agent):
    FieldPolicy.objects.update_or_create(
        role="support_agent",
        category="identity",
        defaults={"visibility": "masked", "revealable": False},
    )
    assign(support_agent, make_customer(full_name="Siti Rahma"))
    html = desk(client, support_agent)
    assert "Your role sees neither names nor addresses in full" in html
    assert "Names show" not in html
