"""A reveal belongs to the interaction it was opened under: it ends when that case ends
(closed, expired by the beat task, or simply past its expiry), a new case on the same
customer needs a new reveal with a new reason, and a reveal from the staff page writes
the one access-log row the API's writes."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.access.models import AccessLogEntry, Interaction, Reveal, RevealStatus
from apps.access.selectors import access_context, customers_assigned_list
from apps.access.services import (
    customers_read,
    interaction_close,
    interaction_open,
    reveal_open,
)
from apps.access.tasks import interactions_expire_task
from apps.audit.models import AuditEvent
from apps.core.errors import NotFound
from apps.requests.export import access_history
from tests.access.factories import assign
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db

EMAIL, PHONE = "jane@example.com", "+6281234567890"
FIRST_REASON = "Customer called about a late refund"
SECOND_REASON = "Customer wrote again about the same parcel"


@pytest.fixture
def customer():
    return make_customer(email=EMAIL, phone="+62 812-3456-7890")


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _reveal(agent, customer, reason=FIRST_REASON, fields=("email", "phone")):
    reveal, _ = reveal_open(
        actor=agent, customer=customer, fields=list(fields), reason=reason
    )
    return reveal


def _opened_reasons(customer) -> list[str]:
    return [
        e.details["reason"]
        for e in AuditEvent.objects.filter(
            action="reveal.opened", target_id=str(customer.pk)
        ).order_by("seq")
    ]


# Defect 5 as the new user found it: close the case, open another within the window.


def test_over_the_api_a_new_case_does_not_inherit_the_closed_cases_reveal(
    support_agent, customer
):
    api = api_for(support_agent)
    detail = f"/api/v1/customers/{customer.pk}/"
    first = api.post(
        "/api/v1/interactions/", {"customer": str(customer.pk), "kind": "support_case"}
    ).json()["id"]
    revealed = api.post(
        detail + "reveal/",
        {"fields": ["email", "phone"], "reason": FIRST_REASON},
        format="json",
    )
    assert revealed.status_code == 200
    assert api.get(detail).json()["email"] == EMAIL

    assert api.post(f"/api/v1/interactions/{first}/close/").status_code == 200
    second = api.post(
        "/api/v1/interactions/", {"customer": str(customer.pk), "kind": "support_case"}
    )
    assert second.status_code == 201

    body = api.get(detail).json()
    assert body["email"] == "j•••@example.com"
    assert body["phone"] != PHONE
    assert "reveal_expires_at" not in body or body["reveal_expires_at"] is None

    again = api.post(
        detail + "reveal/",
        {"fields": ["email"], "reason": SECOND_REASON},
        format="json",
    )
    assert again.status_code == 200
    assert again.json()["values"] == {"email": EMAIL}
    assert api.get(detail).json()["email"] == EMAIL
    assert _opened_reasons(customer) == [FIRST_REASON, SECOND_REASON]
    newest = Reveal.objects.latest("created_at")
    assert str(newest.interaction_id) == second.json()["id"]


def test_on_the_staff_page_a_new_case_does_not_inherit_the_closed_cases_reveal(
    client, support_agent, customer
):
    sign_in(client, support_agent)
    page = reverse("staff:customer", args=[customer.pk])
    client.post(reverse("staff:interaction-open"), {"customer": str(customer.pk)})
    first = Interaction.objects.get(staff=support_agent)
    response = client.post(page, {"fields": ["email", "phone"], "reason": FIRST_REASON})
    assert response.status_code == 302
    assert EMAIL in client.get(page).content.decode()

    client.post(reverse("staff:interaction-close", args=[first.pk]))
    client.post(reverse("staff:interaction-open"), {"customer": str(customer.pk)})
    second = Interaction.objects.get(staff=support_agent, closed_at__isnull=True)

    html = client.get(page).content.decode()
    assert EMAIL not in html
    assert PHONE not in html
    assert "j•••@example.com" in html
    assert 'id="reveal-timer"' not in html  # no reveal running
    assert 'value="email"' in html  # the form offers the reveal again

    response = client.post(page, {"fields": ["email"], "reason": SECOND_REASON})
    assert response.status_code == 302
    assert EMAIL in client.get(page).content.decode()
    assert _opened_reasons(customer) == [FIRST_REASON, SECOND_REASON]
    assert Reveal.objects.latest("created_at").interaction == second


# How a case ends, and what ends with it.


def test_closing_the_case_ends_its_reveals_in_the_same_transaction_audited(
    support_agent, customer
):
    other = make_customer()
    case = assign(support_agent, customer)
    assign(support_agent, other)
    reveal = _reveal(support_agent, customer)
    kept = _reveal(support_agent, other)  # under another case: it goes on

    closed = interaction_close(actor=support_agent, interaction=case)

    reveal.refresh_from_db()
    assert reveal.status == RevealStatus.GRANTED  # it was granted; it has ended
    assert reveal.expires_at == closed.closed_at
    event = AuditEvent.objects.get(action="reveal.ended")
    assert event.target_id == str(customer.pk)
    assert event.details == {
        "count": 1,
        "reveals": [reveal.pk],
        "interaction": str(case.pk),
        "cause": "interaction.closed",
    }
    closing = AuditEvent.objects.get(action="interaction.closed")
    assert closing.seq < event.seq  # one transaction: the case, then its reveals
    kept.refresh_from_db()
    assert kept.expires_at > timezone.now()
    [view] = customers_read(actor=support_agent, customers=[other])
    assert view["email"] == other.email


def test_the_expiry_job_ends_the_reveals_of_the_cases_it_expires(
    support_agent, customer
):
    case = assign(support_agent, customer)
    reveal = _reveal(support_agent, customer)
    assign(support_agent, make_customer())  # expires too, with no reveal to end
    Interaction.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert interactions_expire_task() == 2

    reveal.refresh_from_db()
    case.refresh_from_db()
    assert case.close_reason == "expired"
    assert reveal.expires_at == case.closed_at
    event = AuditEvent.objects.get(action="reveal.ended")
    assert event.actor_id is None
    assert event.details["cause"] == "interaction.expired"
    assert event.details["reveals"] == [reveal.pk]


def test_a_live_reveal_of_an_ended_case_never_shows(
    support_agent, customer, on_postgres
):
    """However the case ended (here: past its expiry, the beat task not run yet, and
    another case still open on the customer), its reveal shows nothing."""
    first = assign(support_agent, customer)
    reveal = _reveal(support_agent, customer)
    assert reveal.interaction == first
    assign(support_agent, customer)  # a second case keeps the customer visible
    Interaction.objects.filter(pk=first.pk).update(
        opened_at=timezone.now() - timedelta(hours=2),
        expires_at=timezone.now() - timedelta(seconds=1),
    )

    [view] = customers_read(actor=support_agent, customers=[customer])
    assert view["email"] == "j•••@example.com"
    assert "reveal_expires_at" not in view
    assert not access_context(
        actor=support_agent, customer_ids=[customer.pk]
    ).reveals.get(customer.pk)
    if on_postgres:  # the agents' one-statement list
        [row] = customers_assigned_list(support_agent)
        assert row.live_reveals is None


def test_a_reveal_lasts_no_longer_than_its_case(support_agent, customer, settings):
    case = assign(
        support_agent,
        customer,
        expires_at=timezone.now()
        + timedelta(minutes=settings.AMANAH_REVEAL_MINUTES - 5),
    )
    reveal = _reveal(support_agent, customer)
    assert reveal.interaction == case
    assert reveal.expires_at == case.expires_at


def test_only_governance_roles_reveal_without_an_open_case(
    support_agent, privacy_admin, customer, settings
):
    """An agent needs an open case. Privacy admins see every customer without one (and
    none can be opened for them): their reveals stay unbound and last their window."""
    case = assign(support_agent, customer)
    interaction_close(actor=support_agent, interaction=case)

    with pytest.raises(NotFound):
        _reveal(support_agent, customer)

    assert not Reveal.objects.exists()
    assert not AccessLogEntry.objects.exists()
    assert not AuditEvent.objects.filter(action="reveal.opened").exists()

    reveal = _reveal(privacy_admin, customer, fields=["email"])
    assert reveal.interaction is None
    assert reveal.expires_at - reveal.created_at == timedelta(
        minutes=settings.AMANAH_REVEAL_MINUTES
    )
    [view] = customers_read(actor=privacy_admin, customers=[customer])
    assert view["email"] == EMAIL


def test_a_case_opened_by_a_dispatcher_binds_the_agents_reveal(
    delivery_agent, privacy_admin, customer
):
    """Cases opened for an agent by someone else bind the agent's reveals the same
    way (a delivery agent may reveal once the policy allows it)."""
    from apps.access.services import policy_set

    policy_set(
        actor=privacy_admin,
        role="delivery_agent",
        category="contact",
        visibility="masked",
        revealable=True,
    )
    case = interaction_open(
        actor=privacy_admin, staff=delivery_agent, customer=customer, kind="delivery"
    )
    reveal = _reveal(delivery_agent, customer, fields=["phone"])
    assert reveal.interaction == case
    interaction_close(actor=privacy_admin, interaction=case)
    reveal.refresh_from_db()
    assert reveal.expires_at <= timezone.now()


# Defect 6: a page reveal logs the look the API reveal logs, no more.


def test_a_page_reveal_writes_the_one_access_log_row_an_api_reveal_writes(
    client, support_agent
):
    by_page, by_api = make_customer(email=EMAIL), make_customer()
    assign(support_agent, by_page)
    assign(support_agent, by_api)

    response = api_for(support_agent).post(
        f"/api/v1/customers/{by_api.pk}/reveal/",
        {"fields": ["email"], "reason": FIRST_REASON},
        format="json",
    )
    assert response.status_code == 200
    sign_in(client, support_agent)
    # As a browser does: the reveal, then the page it redirects to, which shows it.
    response = client.post(
        reverse("staff:customer", args=[by_page.pk]),
        {"fields": ["email"], "reason": FIRST_REASON},
        follow=True,
    )
    assert response.redirect_chain[0][1] == 302
    assert EMAIL in response.content.decode()

    api_rows = AccessLogEntry.objects.filter(customer=by_api)
    page_rows = AccessLogEntry.objects.filter(customer=by_page)
    assert api_rows.count() == page_rows.count() == 1
    [row] = page_rows
    assert row.fields["email"] == "full"
    assert row.reveal_id is not None
    # The customer's "who looked at my data" shows the one look.
    assert len(list(access_history(customer=by_page))) == 1


def test_a_refused_page_reveal_logs_only_the_page_it_shows(client, support_agent):
    """A reveal the form refuses shows the page again, masked: that read is logged
    (one row), as a GET of the page is."""
    customer = make_customer(email=EMAIL)
    assign(support_agent, customer)
    sign_in(client, support_agent)
    url = reverse("staff:customer", args=[customer.pk])

    response = client.post(url, {"fields": ["email"], "reason": "short"})

    assert response.status_code == 400
    [row] = AccessLogEntry.objects.filter(customer=customer)
    assert row.fields["email"] == "masked"
    assert row.reveal_id is None
