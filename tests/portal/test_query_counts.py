"""The customer's "My data" page answers in a fixed number of queries, however many
looks, requests, consents, recipients and systems it lists: the test measures a small
history, grows it tenfold and measures again under the same bound."""

import pytest
from django.urls import reverse

from apps.access.services import customers_read
from apps.consent.models import ConsentSource
from apps.consent.selectors import purpose_get_active
from apps.consent.services import consent_record
from apps.inventory.models import Recipient, System
from apps.inventory.services import inventory_save
from apps.requests.services import request_open, request_transition
from tests.access.factories import assign
from tests.accounts.helpers import sign_in
from tests.portal.factories import make_account

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

SIZES = (3, 30)


def grow(customer, size: int, *, added: list, agent, admin) -> None:
    """Add to the customer's page until it lists `size` of each: looks at their data,
    answered requests, recipients (half gated by a purpose they agreed to) and
    systems; and a consent change each time."""
    sharing = purpose_get_active(code="partner_sharing")
    while len(added) < size:
        n = len(added)
        assign(agent, customer)
        customers_read(actor=agent, customers=[customer])
        request = request_open(actor=customer.user, customer=customer, kind="objection")
        request_transition(
            actor=admin, request=request, status="completed", note="Done as asked."
        )
        consent_record(
            actor=customer.user,
            customer=customer,
            purpose_code="partner_sharing",
            granted=n % 2 == 0,
            source=ConsentSource.SELF_SERVICE,
        )
        categories = ["contact", "identity"]
        inventory_save(
            actor=admin,
            model=Recipient,
            name=f"Partner {n}",
            data={
                "country": "SG",
                "data_categories": categories,
                "purpose": "Deliveries.",
                "gating_purpose": sharing if n % 2 else None,
            },
        )
        inventory_save(
            actor=admin,
            model=System,
            name=f"System {n}",
            data={
                "country": "ID",
                "data_categories": categories,
                "description": "A copy.",
                "retention": "A year.",
                "security": "Encrypted.",
            },
        )
        added.append(n)


def test_my_data_does_not_grow_with_what_it_lists(
    client, support_agent, privacy_admin, django_assert_max_num_queries
):
    customer = make_account()
    sign_in(client, customer.user)
    added: list = []
    for size in SIZES:
        grow(customer, size, added=added, agent=support_agent, admin=privacy_admin)
        client.get(reverse("portal:data"))  # stamps the session's last-seen time
        # The session, the user, their two kinds of second-factor device and their
        # customer row (5); the notice in force and any material change to review
        # (2); the data key (masking); the consents, pending opt-ins and purposes
        # (3); recipients with their gating purposes, systems (2); the looks (one
        # cursor); the requests; the status banner; the change notices; the master
        # key of the customer's data key (when backups of an erasure end).
        with django_assert_max_num_queries(18):
            response = client.get(reverse("portal:data"))
        assert response.status_code == 200
        html = response.content.decode()
        assert f"Partner {size - 1}" in html
        assert f"System {size - 1}" in html
        # One support session: one row, with how many reads (apps/portal/selectors).
        assert html.count("for your support case") == 1
        assert f'class="num">{size}</td>' in html
        assert html.count("Done as asked.") == size
