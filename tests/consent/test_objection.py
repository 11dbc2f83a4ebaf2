"""Objection (GDPR art. 21): to direct marketing it withdraws every marketing purpose
(source `objection`) and staff cannot grant one again, the customer still can; to
another use it opens a review, due when the request is, the data restricted
meanwhile."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.consent.errors import ConsentError
from apps.consent.models import ConsentEvent, ConsentState, Purpose
from apps.consent.services import consent_grant
from apps.customers.selectors import customer_restriction_active
from apps.requests.models import DataRequest, RequestStatus
from apps.requests.services import (
    RESTRICTION_PURPOSE_OBJECTION,
    RequestError,
    request_open,
    request_transition,
)
from tests.accounts.helpers import sign_in
from tests.consent.factories import consent_answer
from tests.errors import error_fields
from tests.portal.factories import PASSWORD, make_account

pytestmark = pytest.mark.django_db

MARKETING = {"marketing_email", "marketing_sms", "marketing_push"}


@pytest.fixture
def me(client):
    customer = make_account(email="me@example.com")
    client.post(
        reverse("portal:login"), {"email": "me@example.com", "password": PASSWORD}
    )
    return customer


def _object(client, to: str):
    return client.post(
        reverse("portal:data"), {"kind": "objection", "objection_to": to}
    )


def test_the_seeded_marketing_purposes_are_marked_direct_marketing():
    marked = set(
        Purpose.objects.filter(direct_marketing=True).values_list("code", flat=True)
    )
    assert marked == MARKETING


def test_an_objection_must_say_what_it_is_to(client, me):
    response = client.post(reverse("portal:data"), {"kind": "objection"})
    assert response.status_code == 400
    assert "Say what you object to" in response.content.decode()
    assert not DataRequest.objects.exists()
    with pytest.raises(RequestError) as refused:
        request_open(actor=me.user, customer=me, kind="objection", objection_to="x")
    assert refused.value.field == "objection_to"


def test_objecting_to_marketing_withdraws_every_marketing_purpose(client, me):
    consent_answer(me, "marketing_sms")
    consent_answer(me, "analytics")
    response = _object(client, "marketing")
    assert response.status_code == 302
    withdrawn = ConsentEvent.objects.filter(customer=me, source="objection")
    assert {e.purpose.code for e in withdrawn} == MARKETING
    assert not any(e.granted for e in withdrawn)
    states = {s.purpose.code: s for s in ConsentState.objects.filter(customer=me)}
    assert all(not states[code].granted for code in MARKETING)
    assert states["marketing_sms"].source == "objection"
    assert states["analytics"].granted  # not marketing: untouched
    request = DataRequest.objects.get()
    assert request.objection_to == "marketing"
    assert request.status == RequestStatus.COMPLETED
    assert "We no longer use your data for direct marketing" in request.outcome
    page = client.get(reverse("portal:data")).content.decode()
    assert "only you can, on your privacy page" in page


def test_after_an_objection_staff_cannot_grant_marketing(client, me, support_agent):
    from tests.access.factories import assign

    _object(client, "marketing")
    with pytest.raises(ConsentError) as refused:
        consent_grant(
            actor=support_agent,
            customer=me,
            purpose_code="marketing_sms",
            source="staff",
            reason="Customer asked on the phone",
        )
    assert refused.value.field == "purpose"
    assert refused.value.code == "objected"
    # A double opt-in purpose: no confirmation email is sent on staff's word either.
    with pytest.raises(ConsentError):
        consent_grant(
            actor=support_agent,
            customer=me,
            purpose_code="marketing_email",
            source="staff",
            reason="Customer asked on the phone",
        )
    assign(support_agent, me)
    api = APIClient()
    api.force_authenticate(support_agent)
    url = f"/api/v1/customers/{me.pk}/consents/"
    body = {"purpose": "marketing_sms", "granted": True, "reason": "Asked by phone"}
    response = api.post(url, body, format="json")
    assert response.status_code == 400
    assert "purpose" in error_fields(response)
    # Not marketing: staff still record it.
    body = {"purpose": "analytics", "granted": True, "reason": "Asked by phone"}
    assert api.post(url, body, format="json").status_code == 200


def test_after_an_objection_the_customer_can_grant_marketing_themselves(client, me):
    _object(client, "marketing")
    response = client.post(
        reverse("portal:consent-toggle", args=["marketing_sms"]), {"granted": "1"}
    )
    assert response.status_code == 302
    state = ConsentState.objects.get(customer=me, purpose__code="marketing_sms")
    assert state.granted
    assert state.source == "self_service"


def test_objecting_to_another_use_opens_a_review_restricted_meanwhile(
    client, me, privacy_admin
):
    response = _object(client, "other")
    assert response.status_code == 302
    request = DataRequest.objects.get()
    assert request.status == RequestStatus.IN_PROGRESS
    assert request.due_at > request.received_at
    restriction = customer_restriction_active(customer=me)
    assert restriction.source == "objection_review"
    assert restriction.purpose == RESTRICTION_PURPOSE_OBJECTION
    assert "We are reviewing your objection" in request.outcome
    sign_in(client, privacy_admin)
    queue = client.get(reverse("requests:queue")).content.decode()
    assert "other use of my data (review; use restricted meanwhile)" in queue
    assert request.due_at.strftime("%Y-%m-%d") in queue
    api = APIClient()
    api.force_authenticate(privacy_admin)
    listed = api.get("/api/v1/requests/").json()["results"]
    assert listed[0]["objection_to"] == "other"
    # Refusing needs reasons; the restriction stays until lifted, the customer told.
    with pytest.raises(RequestError):
        request_transition(actor=privacy_admin, request=request, status="refused")
    request = request_transition(
        actor=privacy_admin,
        request=request,
        status="refused",
        note="Fraud prevention outweighs the grounds given",
    )
    assert request.outcome.endswith(
        "The use of your data stays restricted until we tell you we lift it."
    )
    assert customer_restriction_active(customer=me) == restriction


def test_upholding_an_objection_keeps_the_data_restricted(client, me, privacy_admin):
    _object(client, "other")
    request = DataRequest.objects.get()
    request = request_transition(
        actor=privacy_admin, request=request, status="completed"
    )
    assert request.outcome.startswith("We upheld your objection")
    assert customer_restriction_active(customer=me) is not None
