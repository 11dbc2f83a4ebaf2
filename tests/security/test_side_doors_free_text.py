"""Side doors through free text (issue #15): a reason or note staff type about a
customer is kept for good (the audit trail, the reveals table, a request's history),
so it must not hold that customer's name, contact details or identifiers. Each door
answers 400 naming the field, never repeats the value, and writes nothing."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.access.models import Reveal
from apps.audit.models import AuditEvent
from apps.consent.models import ConsentEvent
from apps.monitoring.models import AlertStatus
from apps.requests.models import DataRequest, RequestEvent, RequestStatus
from apps.requests.services import request_open
from apps.retention.models import LegalHold
from tests.access.factories import assign
from tests.accounts.helpers import sign_in
from tests.customers.factories import CANARY, make_canary, nik_with_luhn
from tests.errors import error_code, error_fields
from tests.monitoring.factories import make_alert

pytestmark = pytest.mark.django_db

NAME_REASON = "Customer Canary Zzyzx Quill asked about the refund"
ID_REASON = f"Customer asked about {CANARY['national_id']} again"
MESSAGE = "must not contain personal data"
# What the refusal names of each reason: the kind of value, never the value.
KIND = {NAME_REASON: "the customer's name", ID_REASON: "the customer's national id"}


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def assert_refused(body: str, field: str, kind: str) -> None:
    """A 400 body (JSON or the page) naming `field` and the `kind` of value it
    refused, with no canary value in it."""
    assert MESSAGE in body
    assert kind in body
    assert f'"{field}"' in body or f'name="{field}"' in body
    for key in ("full_name", "national_id", "email", "phone_e164"):
        assert CANARY[key] not in body


def error_text(response) -> str:
    return str(response.json())


@pytest.fixture
def canary():
    return make_canary()


@pytest.mark.parametrize("reason", [NAME_REASON, ID_REASON])
def test_a_reveal_reason_naming_the_customer_is_refused(support_agent, canary, reason):
    assign(support_agent, canary)
    events = AuditEvent.objects.count()
    response = api_for(support_agent).post(
        reverse("customer-reveal", args=[canary.pk]),
        {"fields": ["email"], "reason": reason},
        format="json",
    )
    assert response.status_code == 400
    assert error_code(response) == "personal_data"
    assert list(error_fields(response)) == ["reason"]
    [message] = error_fields(response)["reason"]
    assert MESSAGE in message
    assert KIND[reason] in message
    assert CANARY["full_name"] not in response.content.decode()
    assert CANARY["national_id"] not in response.content.decode()
    assert not Reveal.objects.exists()
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("reason", [NAME_REASON, ID_REASON])
def test_a_consent_change_reason_naming_the_customer_is_refused(
    support_agent, canary, reason
):
    assign(support_agent, canary)
    events = AuditEvent.objects.count()
    response = api_for(support_agent).post(
        f"/api/v1/customers/{canary.pk}/consents/",
        {"purpose": "analytics", "granted": False, "reason": reason},
        format="json",
    )
    assert response.status_code == 400
    assert "reason" in error_fields(response)
    assert_refused(response.content.decode(), "reason", KIND[reason])
    assert not ConsentEvent.objects.exists()
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("reason", [NAME_REASON, ID_REASON])
def test_a_legal_hold_reason_naming_the_customer_is_refused(
    client, privacy_admin, canary, reason
):
    sign_in(client, privacy_admin)
    events = AuditEvent.objects.count()
    response = client.post(
        reverse("retention:holds"), {"customer": str(canary.pk), "reason": reason}
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert list(form.errors) == ["reason"]
    message = form.errors["reason"][0]
    assert MESSAGE in message
    assert CANARY["full_name"] not in message
    assert not LegalHold.objects.exists()
    assert AuditEvent.objects.count() == events


def test_a_legal_hold_on_a_kind_of_record_is_checked_for_shapes(client, privacy_admin):
    sign_in(client, privacy_admin)
    response = client.post(
        reverse("retention:holds"),
        {"covers": "access_log", "reason": f"Court asked about {nik_with_luhn(False)}"},
    )
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["reason"]
    assert not LegalHold.objects.exists()


def test_an_alert_dismissal_reason_with_a_national_id_is_refused(
    client, compliance_officer
):
    # An alert names no customer (its evidence is ids and counts): the reason is
    # checked for personal data in general, a NIK-shaped number here.
    alert = make_alert()
    value = nik_with_luhn(False)
    sign_in(client, compliance_officer)
    response = client.post(
        reverse("monitoring:action", args=[alert.pk, "dismiss"]),
        {"reason": f"Agent looked up {value} for QA"},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert MESSAGE in html
    assert value not in html
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN
    assert alert.reason == ""
    assert not AuditEvent.objects.exists()


@pytest.fixture
def open_request(canary, privacy_admin):
    return request_open(
        actor=privacy_admin,
        customer=canary,
        kind="objection",
        verification="Video call, ID card checked",
    )


@pytest.mark.parametrize("note", [NAME_REASON, ID_REASON])
def test_a_request_transition_note_naming_the_customer_is_refused(
    client, privacy_admin, open_request, note
):
    sign_in(client, privacy_admin)
    events, history = AuditEvent.objects.count(), RequestEvent.objects.count()
    response = client.post(
        reverse("requests:detail", args=[open_request.pk]),
        {"status": "refused", "note": note},
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert list(form.errors) == ["note"]
    assert MESSAGE in form.errors["note"][0]
    open_request.refresh_from_db()
    assert open_request.status == RequestStatus.RECEIVED
    assert open_request.outcome == ""
    assert RequestEvent.objects.count() == history
    assert AuditEvent.objects.count() == events


def test_a_request_transition_reason_through_the_api_is_refused(
    privacy_admin, open_request
):
    response = api_for(privacy_admin).post(
        f"/api/v1/requests/{open_request.pk}/transition/",
        {"status": "refused", "reason": ID_REASON},
        format="json",
    )
    assert response.status_code == 400
    assert MESSAGE in error_fields(response)["note"][0]
    assert CANARY["national_id"] not in response.content.decode()
    open_request.refresh_from_db()
    assert open_request.status == RequestStatus.RECEIVED


def test_a_request_extension_reason_naming_the_customer_is_refused(
    client, privacy_admin, canary
):
    canary.country = "DE"  # a GDPR request, which may be extended
    canary.region = ""
    canary.save(update_fields=["country", "region"])
    request = request_open(
        actor=privacy_admin,
        customer=canary,
        kind="objection",
        verification="Video call, ID card checked",
    )
    due = request.due_at
    sign_in(client, privacy_admin)
    events, history = AuditEvent.objects.count(), RequestEvent.objects.count()
    response = client.post(
        reverse("requests:detail", args=[request.pk]),
        {"status": "in_progress", "extend": "on", "note": NAME_REASON},
    )
    assert response.status_code == 400
    assert list(response.context["form"].errors) == ["note"]
    request.refresh_from_db()
    assert (request.extended, request.due_at) == (False, due)
    assert RequestEvent.objects.count() == history
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize(
    ("field", "data"),
    [
        ("verification", {"verification": f"Checked KTP {CANARY['national_id']}"}),
        # Not the details: they are the customer's own words, sealed under their data
        # key (tests/requests/test_details.py), and may name them.
    ],
)
def test_a_request_opened_by_staff_naming_the_customer_is_refused(
    client, privacy_admin, canary, field, data
):
    sign_in(client, privacy_admin)
    events = AuditEvent.objects.count()
    response = client.post(
        reverse("requests:queue"),
        {
            "customer": str(canary.pk),
            "kind": "objection",
            "objection_to": "other",
            **data,
        },
    )
    assert response.status_code == 400
    form = response.context["form"]
    assert list(form.errors) == [field]
    assert MESSAGE in form.errors[field][0]
    assert not DataRequest.objects.exists()
    assert AuditEvent.objects.count() == events


def test_ordinary_reasons_still_pass_every_door(client, support_agent, canary):
    assign(support_agent, canary)
    response = api_for(support_agent).post(
        reverse("customer-reveal", args=[canary.pk]),
        {"fields": ["email"], "reason": "Customer called about order 4521"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert Reveal.objects.get().reason == "Customer called about order 4521"


def test_details_a_customer_writes_on_their_own_request_are_sealed_not_refused(
    client,
):
    """The details are the customer's own words, sealed under their data key and gone
    with an erasure (tests/requests/test_details.py): their name may be in them, a card
    number may not."""
    from tests.portal.factories import PASSWORD, make_account

    make_account(email="me@example.com", full_name="Siti Rahmawati")
    client.post(
        reverse("portal:login"), {"email": "me@example.com", "password": PASSWORD}
    )
    response = client.post(
        reverse("portal:data"),
        {"kind": "restriction", "details": "Please stop, Rahmawati here"},
    )
    assert response.status_code == 302
    assert DataRequest.objects.get().details == "Please stop, Rahmawati here"
    events = AuditEvent.objects.count()
    response = client.post(
        reverse("portal:data"),
        {
            "kind": "objection",
            "objection_to": "other",
            "details": "Charge 4111 1111 1111 1111 instead",
        },
    )
    assert response.status_code == 400
    assert "Card numbers" in response.context["form"].errors["details"][0]
    assert "4111" not in response.content.decode().replace(
        "Charge 4111 1111 1111 1111 instead", ""
    )
    assert not DataRequest.objects.filter(kind="objection").exists()
    assert AuditEvent.objects.count() == events


@pytest.mark.parametrize("reason", [NAME_REASON, ID_REASON])
def test_a_page_refusing_a_reason_does_not_show_it_again(
    client, support_agent, privacy_admin, canary, reason
):
    """The form comes back with the refusal, and its box empty: the page repeats
    nothing it refused (the staff page's reveal, the legal-hold page)."""
    assign(support_agent, canary)
    sign_in(client, support_agent)
    response = client.post(
        reverse("staff:customer", args=[canary.pk]),
        {"fields": ["email"], "reason": reason},
    )
    assert response.status_code == 400
    assert MESSAGE in response.content.decode()
    assert reason not in response.content.decode()
    assert CANARY["national_id"] not in response.content.decode()

    sign_in(client, privacy_admin)
    response = client.post(
        reverse("retention:holds"), {"customer": str(canary.pk), "reason": reason}
    )
    assert response.status_code == 400
    assert MESSAGE in response.content.decode()
    assert reason not in response.content.decode()
