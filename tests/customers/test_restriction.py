"""Restriction (GDPR art. 18): a restricted customer is in no audience and no data
share, shown to staff with a banner, revealed only for the restriction's purpose,
until a privacy admin lifts it, the customer told first."""

import csv
import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.access.errors import AccessForbidden
from apps.access.models import Reveal, RevealStatus
from apps.access.services import customers_read, reveal_open
from apps.audit.models import AuditEvent
from apps.consent.models import Purpose
from apps.consent.selectors import (
    audience_allowed_ids,
    audience_csv_chunks,
    audience_queryset,
    consent_states_changed_since,
)
from apps.core.errors import Forbidden
from apps.crypto.keys import key_scope
from apps.customers.errors import CustomerConflict, CustomerError
from apps.customers.models import Restriction
from apps.customers.selectors import (
    customer_restriction_active,
    customer_restrictions_active_for,
)
from apps.customers.services import customer_restrict, customer_restriction_lift
from apps.inventory.models import Recipient, ShareRecord
from apps.inventory.services import SharingRefused, data_share
from apps.requests.models import RequestKind
from apps.requests.services import (
    RESTRICTION_PURPOSE_REQUEST,
    request_open,
    request_transition,
)
from apps.retention.services import customer_erase
from tests.access.factories import assign
from tests.accounts.helpers import sign_in
from tests.concurrency import at_once
from tests.consent.factories import consent_answer
from tests.customers.factories import make_customer
from tests.errors import error_fields

pytestmark = pytest.mark.django_db

PURPOSE = "legal claims: chargeback dispute 2026"
AUDIENCE = "/api/v1/consent/audience/"


def restrict(customer, purpose=PURPOSE, source="staff", actor=None):
    return customer_restrict(
        actor=actor, customer=customer, purpose=purpose, source=source
    )


@pytest.fixture
def two_granted(db):
    kept = make_customer()
    held = make_customer()
    for customer in (kept, held):
        consent_answer(customer, "marketing_sms")
    restrict(held)
    return kept, held


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


# Placing it ---------------------------------------------------------------------


def test_a_restriction_is_placed_audited_and_read_back(privacy_admin):
    customer = make_customer()
    assert customer_restriction_active(customer=customer) is None
    restriction = restrict(customer, actor=privacy_admin)
    assert customer_restriction_active(customer=customer) == restriction
    assert restriction.purpose == PURPOSE
    assert restriction.placed_by == privacy_admin
    event = AuditEvent.objects.get(action="customer.restricted")
    assert event.details["purpose"] == PURPOSE
    assert event.details["source"] == "staff"
    # Placing the same one again returns the one in force.
    assert restrict(customer) == restriction
    assert Restriction.objects.count() == 1


def test_the_purpose_must_hold_no_customer_data_and_be_a_sentence():
    customer = make_customer(full_name="Budi Hartono")
    with pytest.raises(CustomerError) as refused:
        restrict(customer, purpose="legal claims of Budi Hartono")
    assert refused.value.field == "purpose"
    with pytest.raises(CustomerError):
        restrict(customer, purpose="claims")
    with pytest.raises(CustomerError):
        restrict(customer, source="whim")
    assert not Restriction.objects.exists()


def test_an_erased_customer_cannot_be_restricted():
    customer = customer_erase(actor=None, customer=make_customer(), cause="test")
    with pytest.raises(CustomerConflict):
        restrict(customer)


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_placements_make_one_restriction():
    customer = make_customer()
    results = at_once([lambda: restrict(customer), lambda: restrict(customer)])
    assert all(isinstance(r, Restriction) for r in results), results
    assert Restriction.objects.filter(customer_id=customer.pk).count() == 1


# Audiences and shares -----------------------------------------------------------


def test_a_restricted_customer_is_in_no_audience_selector(two_granted):
    kept, held = two_granted
    purpose = Purpose.objects.get(code="marketing_sms")
    assert list(
        audience_queryset(purpose=purpose).values_list("customer_id", flat=True)
    ) == [kept.pk]
    assert audience_allowed_ids(purpose=purpose, customer_ids=[kept.pk, held.pk]) == [
        kept.pk
    ]
    streamed = b"".join(
        c if isinstance(c, bytes) else c.encode()
        for c in audience_csv_chunks(purpose=purpose)
    ).decode()
    assert str(kept.pk) in streamed
    assert str(held.pk) not in streamed
    states = {
        s.customer_id: s
        for s in consent_states_changed_since(since=None).filter(
            purpose__code="marketing_sms"
        )
    }
    assert states[held.pk].customer_restricted is True
    assert states[kept.pk].customer_restricted is False


def test_a_restricted_customer_is_in_no_audience_api_nor_csv(
    privacy_admin, two_granted
):
    kept, held = two_granted
    api = api_for(privacy_admin)
    response = api.post(
        AUDIENCE,
        {"purpose": "marketing_sms", "customer_ids": [str(kept.pk), str(held.pk)]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert str(held.pk) not in response.content.decode()
    assert str(kept.pk) in response.content.decode()
    response = api.get(f"{AUDIENCE}marketing_sms.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [str(kept.pk)] in rows
    assert [str(held.pk)] not in rows


def test_lifting_brings_the_customer_back_into_the_audience(privacy_admin, two_granted):
    _, held = two_granted
    purpose = Purpose.objects.get(code="marketing_sms")
    customer_restriction_lift(
        actor=privacy_admin,
        restriction=customer_restriction_active(customer=held),
        reason="Dispute settled, customer told by email",
        customer_told=True,
    )
    assert held.pk in set(
        audience_queryset(purpose=purpose).values_list("customer_id", flat=True)
    )


def test_a_share_of_a_restricted_customer_is_refused_and_recorded(support_agent):
    customer = make_customer()
    recipient = Recipient.objects.create(
        name="Courier", purpose="Deliveries", data_categories=["contact"], country="ID"
    )
    restrict(customer)
    with pytest.raises(SharingRefused, match="restricted"):
        data_share(actor=support_agent, recipient=recipient, customer=customer)
    record = ShareRecord.objects.get()
    assert record.allowed is False
    event = AuditEvent.objects.get(action="data.share_refused")
    assert event.details["why"] == "restricted"


# Staff: banner, masking, reveals -------------------------------------------------


def test_reveal_needs_a_reason_naming_the_purpose(support_agent):
    customer = make_customer(email="jane@example.com")
    assign(support_agent, customer)
    restrict(customer)
    with pytest.raises(AccessForbidden) as refused:
        reveal_open(
            actor=support_agent,
            customer=customer,
            fields=["email"],
            reason="Customer asked for a callback",
        )
    assert refused.value.field == "reason"
    assert PURPOSE in str(refused.value)
    assert Reveal.objects.get().status == RevealStatus.REFUSED
    with key_scope():
        _, values = reveal_open(
            actor=support_agent,
            customer=customer,
            fields=["email"],
            reason=f"For {PURPOSE.upper()}: the lawyer needs the address",
        )
    assert values == {"email": "jane@example.com"}


def test_the_reveal_api_refuses_without_the_purpose(support_agent):
    customer = make_customer()
    assign(support_agent, customer)
    restrict(customer)
    url = f"/api/v1/customers/{customer.pk}/reveal/"
    response = api_for(support_agent).post(
        url, {"fields": ["email"], "reason": "Customer asked for a callback"}, "json"
    )
    assert response.status_code == 403
    assert "reason" in error_fields(response)
    response = api_for(support_agent).post(
        url, {"fields": ["email"], "reason": f"{PURPOSE}: lawyer asked"}, "json"
    )
    assert response.status_code == 200, response.content


def test_policy_full_fields_are_masked_while_restricted(support_agent):
    customer = make_customer(full_name="Jane Doe")
    assign(support_agent, customer)
    with key_scope():
        [before] = customers_read(actor=support_agent, customers=[customer])
    assert before["full_name"] == "Jane Doe"  # the agent's policy: full
    restrict(customer)
    with key_scope():
        [after] = customers_read(actor=support_agent, customers=[customer])
    assert after["full_name"] != "Jane Doe"
    assert after["shown"]["full_name"] == "masked"
    assert after["restricted"][0]["purpose"] == PURPOSE


def test_the_page_and_desk_show_the_banner_and_reveal_for_the_purpose(
    client, support_agent
):
    customer = make_customer(email="jane@example.com")
    assign(support_agent, customer)
    restrict(customer)
    sign_in(client, support_agent)
    url = reverse("staff:customer", args=[customer.pk])
    page = client.get(url).content.decode()
    assert f"Restricted: use limited to {PURPOSE}" in page
    assert 'name="restriction_purpose"' in page
    desk = client.get(reverse("staff:desk")).content.decode()
    assert f"Restricted: use limited to {PURPOSE}" in desk
    # Without the purpose: refused on the form, nothing shown.
    response = client.post(
        url, {"fields": ["email"], "reason": "Customer asked for a callback"}
    )
    assert response.status_code == 400
    assert "jane@example.com" not in response.content.decode()
    # Confirming the purpose on the form reveals.
    response = client.post(
        url,
        {
            "fields": ["email"],
            "restriction_purpose": PURPOSE,
            "reason": "The lawyer needs the address",
        },
    )
    assert response.status_code == 302
    assert "jane@example.com" in client.get(url).content.decode()
    granted = Reveal.objects.get(status=RevealStatus.GRANTED)
    assert granted.reason.startswith(PURPOSE)


# Lifting -------------------------------------------------------------------------


def test_only_a_privacy_admin_lifts_it(client, support_agent, compliance_officer):
    customer = make_customer()
    restriction = restrict(customer)
    with pytest.raises(Forbidden):
        customer_restriction_lift(
            actor=compliance_officer,
            restriction=restriction,
            reason="Dispute settled, customer told",
            customer_told=True,
        )
    assign(support_agent, customer)
    sign_in(client, support_agent)
    url = reverse("staff:restriction-lift", args=[customer.pk, restriction.pk])
    response = client.post(
        url, {"reason": "Dispute settled, customer told", "customer_told": "on"}
    )
    assert response.status_code == 403
    assert customer_restriction_active(customer=customer) == restriction


@pytest.mark.parametrize("role", ["support_agent", "compliance_officer"])
def test_other_roles_get_403_whether_or_not_the_restriction_exists(
    request, client, role
):
    customer = make_customer()
    restriction = restrict(customer)
    user = request.getfixturevalue(role)
    if role == "support_agent":
        assign(user, customer)
    sign_in(client, user)
    body = {"reason": "Dispute settled, customer told", "customer_told": "on"}
    for restriction_id in (restriction.pk, restriction.pk + 1000):
        url = reverse("staff:restriction-lift", args=[customer.pk, restriction_id])
        assert client.post(url, body).status_code == 403
    assert customer_restriction_active(customer=customer) == restriction


def test_a_lift_needs_the_customer_told_and_a_reason(client, privacy_admin):
    customer = make_customer()
    restriction = restrict(customer)
    sign_in(client, privacy_admin)
    page = client.get(reverse("staff:customer", args=[customer.pk])).content.decode()
    assert "Lift a restriction" in page
    url = reverse("staff:restriction-lift", args=[customer.pk, restriction.pk])
    response = client.post(url, {"reason": "Dispute settled, all done"})
    assert response.status_code == 302
    assert customer_restriction_active(customer=customer) == restriction
    with pytest.raises(CustomerError) as refused:
        customer_restriction_lift(
            actor=privacy_admin,
            restriction=restriction,
            reason="short",
            customer_told=True,
        )
    assert refused.value.field == "reason"
    response = client.post(
        url, {"reason": "Dispute settled, all done", "customer_told": "on"}
    )
    assert response.status_code == 302
    restriction.refresh_from_db()
    assert restriction.lifted_by == privacy_admin
    assert restriction.customer_told_confirmed_at is not None
    assert restriction.lift_reason == "Dispute settled, all done"
    assert customer_restriction_active(customer=customer) is None
    assert AuditEvent.objects.filter(action="customer.restriction_lifted").exists()
    with pytest.raises(CustomerConflict):
        customer_restriction_lift(
            actor=privacy_admin,
            restriction=restriction,
            reason="Dispute settled, again",
            customer_told=True,
        )


def test_a_lift_for_another_customers_id_is_404(client, privacy_admin):
    restriction = restrict(make_customer())
    other = make_customer()
    sign_in(client, privacy_admin)
    url = reverse("staff:restriction-lift", args=[other.pk, restriction.pk])
    response = client.post(url, {"reason": "Dispute settled", "customer_told": "on"})
    assert response.status_code == 404


# A restriction request -------------------------------------------------------------


def test_accepting_a_restriction_request_restricts_and_completing_says_so(
    privacy_admin,
):
    customer = make_customer()
    request = request_open(
        actor=privacy_admin,
        customer=customer,
        kind=RequestKind.RESTRICTION,
        verification="Phone call, PIN checked",
    )
    assert customer_restriction_active(customer=customer) is None
    request_transition(actor=privacy_admin, request=request, status="in_progress")
    restriction = customer_restriction_active(customer=customer)
    assert restriction.source == "request"
    assert restriction.request_id == request.pk
    assert restriction.purpose == RESTRICTION_PURPOSE_REQUEST
    request = request_transition(
        actor=privacy_admin, request=request, status="completed"
    )
    assert customer_restrictions_active_for(customer_ids=[customer.pk]) == {
        customer.pk: [restriction]
    }
    assert "The use of your data is restricted" in request.outcome
    assert RESTRICTION_PURPOSE_REQUEST in request.outcome


def test_the_customers_feed_says_restricted_when_placed_and_lifted(
    settings, privacy_admin
):
    settings.AMANAH_SYNC_SETTLE_SECONDS = 0
    customer = make_customer()
    other = make_customer()
    api = APIClient()
    api.force_authenticate(privacy_admin)

    def feed(since) -> dict:
        response = api.get(
            "/api/v1/customers/changes/",
            {"updated_since": since.isoformat(), "page_size": 50},
        )
        assert response.status_code == 200, response.content
        return {row["id"]: row["restricted"] for row in response.json()["results"]}

    before = timezone.now()
    restriction = restrict(customer)
    assert feed(before) == {str(customer.pk): True}
    assert feed(before - timedelta(days=1))[str(other.pk)] is False
    lifted = timezone.now()
    customer_restriction_lift(
        actor=privacy_admin,
        restriction=restriction,
        reason="Dispute settled, customer told",
        customer_told=True,
    )
    assert feed(lifted) == {str(customer.pk): False}


# A restriction request and a lift, in either order -----------------------------------


def _restriction_request(privacy_admin, customer):
    return request_open(
        actor=privacy_admin,
        customer=customer,
        kind=RequestKind.RESTRICTION,
        verification="Phone call, PIN checked",
    )


def _lift(privacy_admin, restriction):
    return customer_restriction_lift(
        actor=privacy_admin,
        restriction=restriction,
        reason="Address checked, customer told",
        customer_told=True,
    )


def test_completing_after_a_lift_does_not_restrict_again_and_says_when(
    privacy_admin,
):
    customer = make_customer()
    request = _restriction_request(privacy_admin, customer)
    request_transition(actor=privacy_admin, request=request, status="in_progress")
    restriction = customer_restriction_active(customer=customer)
    _lift(privacy_admin, restriction)
    # Accepting again and completing: the lifted restriction is not placed again.
    request_transition(actor=privacy_admin, request=request, status="in_progress")
    request = request_transition(
        actor=privacy_admin,
        request=request,
        status="completed",
        note="Address checked and found accurate",
    )
    assert customer_restriction_active(customer=customer) is None
    assert Restriction.objects.filter(customer_id=customer.pk).count() == 1
    assert AuditEvent.objects.filter(action="customer.restricted").count() == 1
    day = timezone.localdate().isoformat()
    assert request.outcome == (
        "Address checked and found accurate. The use of your data was restricted "
        f"from {day} until {day}, when we lifted the restriction after telling you."
    )
    assert "is restricted" not in request.outcome


def test_a_lift_after_completion_stays_lifted(privacy_admin):
    customer = make_customer()
    request = _restriction_request(privacy_admin, customer)
    request = request_transition(
        actor=privacy_admin, request=request, status="completed"
    )
    assert "The use of your data is restricted" in request.outcome
    _lift(privacy_admin, customer_restriction_active(customer=customer))
    assert customer_restriction_active(customer=customer) is None
    # The request is closed: nothing moves it on, so nothing restricts again.
    with pytest.raises(Exception, match="closed"):
        request_transition(actor=privacy_admin, request=request, status="completed")
    assert customer_restriction_active(customer=customer) is None


def test_refusing_an_accepted_restriction_request_says_the_restriction_stays(
    privacy_admin,
):
    customer = make_customer()
    request = _restriction_request(privacy_admin, customer)
    request_transition(actor=privacy_admin, request=request, status="in_progress")
    request = request_transition(
        actor=privacy_admin,
        request=request,
        status="refused",
        note="The data was found accurate",
    )
    # Refused, yet the restriction placed when it was accepted is still in force.
    assert customer_restriction_active(customer=customer) is not None
    assert request.outcome == (
        "The data was found accurate. The use of your data stays restricted until "
        "we tell you we lift it."
    )


def test_refusing_after_a_lift_says_from_when_until_when(privacy_admin):
    customer = make_customer()
    request = _restriction_request(privacy_admin, customer)
    request_transition(actor=privacy_admin, request=request, status="in_progress")
    _lift(privacy_admin, customer_restriction_active(customer=customer))
    request = request_transition(
        actor=privacy_admin,
        request=request,
        status="refused",
        note="The data was found accurate",
    )
    day = timezone.localdate().isoformat()
    assert request.outcome == (
        "The data was found accurate. The use of your data was restricted "
        f"from {day} until {day}, when we lifted the restriction after telling you."
    )


def test_refusing_a_restriction_request_never_accepted_says_only_why(privacy_admin):
    customer = make_customer()
    request = request_transition(
        actor=privacy_admin,
        request=_restriction_request(privacy_admin, customer),
        status="refused",
        note="The data was found accurate",
    )
    assert customer_restriction_active(customer=customer) is None
    assert request.outcome == "The data was found accurate"


def test_the_outcome_joins_the_note_and_the_text_as_sentences(privacy_admin):
    customer = make_customer()
    request = request_transition(
        actor=privacy_admin,
        request=_restriction_request(privacy_admin, customer),
        status="completed",
        note="Address checked and found accurate",
    )
    assert request.outcome.startswith(
        "Address checked and found accurate. The use of your data is restricted: "
    )
    other = make_customer()
    request = request_transition(
        actor=privacy_admin,
        request=_restriction_request(privacy_admin, other),
        status="completed",
        note="Checked, all fine!",
    )
    assert request.outcome.startswith("Checked, all fine! The use of your data")


# The purpose and a reveal's reason ---------------------------------------------------


def test_a_request_restricts_for_a_short_law_neutral_purpose(privacy_admin):
    customer = make_customer()  # Indonesian (UU PDP)
    request = _restriction_request(privacy_admin, customer)
    request_transition(actor=privacy_admin, request=request, status="in_progress")
    restriction = customer_restriction_active(customer=customer)
    assert restriction.purpose == "legal claims"
    assert "GDPR" not in restriction.purpose


@pytest.mark.parametrize(
    "purpose", ["legal claims", "legal claims: chargeback dispute 2026"]
)
def test_the_reveal_api_takes_a_reason_naming_the_ground(support_agent, purpose):
    customer = make_customer()  # Indonesian
    assign(support_agent, customer)
    restrict(customer, purpose=purpose)
    api = api_for(support_agent)
    url = f"/api/v1/customers/{customer.pk}/reveal/"
    response = api.post(
        url, {"fields": ["email"], "reason": "Customer asked for a callback"}, "json"
    )
    assert response.status_code == 403
    assert "reason" in error_fields(response)
    assert "“legal claims”" in " ".join(error_fields(response)["reason"])
    response = api.post(
        url,
        {
            "fields": ["email"],
            "reason": "Needed for Legal\n claims in the address dispute",
        },
        "json",
    )
    assert response.status_code == 200, response.content


def _reveal(api, customer, reason):
    return api.post(
        f"/api/v1/customers/{customer.pk}/reveal/",
        {"fields": ["email"], "reason": reason},
        "json",
    )


def test_the_ground_is_named_as_whole_words(support_agent, privacy_admin):
    customer = make_customer()
    assign(support_agent, customer)
    # A customer's restriction request, accepted: "legal claims".
    request_transition(
        actor=privacy_admin,
        request=_restriction_request(privacy_admin, customer),
        status="in_progress",
    )
    api = api_for(support_agent)
    response = _reveal(api, customer, "Checking illegal claims made in the chat")
    assert response.status_code == 403
    assert "“legal claims”" in " ".join(error_fields(response)["reason"])
    response = _reveal(api, customer, "Checking legal claimsman records today")
    assert response.status_code == 403
    response = _reveal(api, customer, "Needed for LEGAL  claims, the lawyer asked")
    assert response.status_code == 200, response.content


@pytest.mark.parametrize(
    ("purpose", "hold"),
    [
        ("legal claims: legal hold 12", "legal hold 12"),
        ("legal claims: Tax audit 2026", "Tax audit 2026"),
    ],
)
def test_a_legal_holds_restriction_needs_the_hold_named(support_agent, purpose, hold):
    customer = make_customer()
    assign(support_agent, customer)
    restrict(customer, purpose=purpose, source="legal_hold")
    api = api_for(support_agent)
    response = _reveal(api, customer, "Needed for legal claims, the lawyer asked")
    assert response.status_code == 403
    said = " ".join(error_fields(response)["reason"])
    assert f"Name “legal claims” and “{hold}” in your reason" in said
    # Another hold's number is not this one.
    response = _reveal(api, customer, f"Needed for legal claims under {hold}3")
    assert response.status_code == 403
    response = _reveal(api, customer, f"Needed for legal claims under {hold.upper()}")
    assert response.status_code == 200, response.content
