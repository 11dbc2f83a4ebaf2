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

MARKETING = {"marketing_email", "marketing_sms", "marketing_push", "partner_sharing"}


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


def test_objecting_to_marketing_withdraws_every_marketing_purpose_granted(client, me):
    consent_answer(me, "marketing_sms")
    consent_answer(me, "partner_sharing")
    consent_answer(me, "analytics")
    consent_answer(me, "marketing_push", granted=False)
    response = _object(client, "marketing")
    assert response.status_code == 302
    withdrawn = ConsentEvent.objects.filter(customer=me, source="objection")
    # Only what was granted: a withdrawal of a purpose never granted is noise.
    assert {e.purpose.code for e in withdrawn} == {"marketing_sms", "partner_sharing"}
    assert not any(e.granted for e in withdrawn)
    states = {s.purpose.code: s for s in ConsentState.objects.filter(customer=me)}
    assert not any(states[code].granted for code in MARKETING if code in states)
    assert states["marketing_sms"].source == "objection"
    assert states["marketing_push"].source == "api"  # untouched
    assert states["analytics"].granted  # not marketing: untouched
    request = DataRequest.objects.get()
    assert request.objection_to == "marketing"
    assert request.status == RequestStatus.COMPLETED
    assert request.outcome.startswith(
        "We no longer use your data for direct marketing (marketing emails, "
        "marketing text messages, app notifications, sharing with partners): we "
        "withdrew what you had agreed to or asked for (marketing text messages, "
        "sharing with partners). Our staff cannot turn any of them on"
    )
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


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_objection_locks_every_state_and_opt_in_row_before_the_audit_chain():
    """apps/core/db.py: after the audit chain a transaction waits on no row lock. So
    when the objection's first audit event is written, every marketing state row and
    open opt-in request of the customer is held already (another connection cannot
    take it, NOWAIT)."""
    import threading

    from django.db import OperationalError, connection, transaction

    from apps.consent import services as consent_services
    from apps.consent.models import OptInRequest
    from apps.consent.services import consent_object_to_marketing, opt_in_request
    from tests.consent.factories import reseed_purposes
    from tests.customers.factories import make_customer

    reseed_purposes()  # a transactional test may start after another one's flush
    customer = make_customer()
    for code in sorted(MARKETING):
        consent_answer(customer, code)
    opt_in_request(
        customer=customer, purpose=Purpose.objects.get(code="marketing_push")
    )
    states = list(
        ConsentState.objects.filter(
            customer=customer, purpose__code__in=MARKETING
        ).values_list("pk", flat=True)
    )
    opt_ins = list(
        OptInRequest.objects.filter(customer=customer).values_list("pk", flat=True)
    )
    assert len(states) == len(MARKETING)
    assert len(opt_ins) == 1
    free: list[str] = []

    def probe() -> None:
        try:
            with connection.cursor() as cursor:
                for table, ids in (
                    ("consent_consentstate", states),
                    ("consent_optinrequest", opt_ins),
                ):
                    for pk in ids:
                        try:
                            with transaction.atomic():
                                cursor.execute(
                                    f"SELECT 1 FROM {table} WHERE id = %s "  # noqa: S608
                                    "FOR NO KEY UPDATE NOWAIT",
                                    [pk],
                                )
                            free.append(f"{table}:{pk}")
                        except OperationalError:
                            pass  # held by the objection: as it should be
        finally:
            connection.close()

    record = consent_services.audit.record
    probed = []

    def record_probing(**kwargs):
        if not probed:
            probed.append(kwargs["action"])
            thread = threading.Thread(target=probe)
            thread.start()
            thread.join()
        return record(**kwargs)

    from unittest import mock

    with mock.patch.object(consent_services.audit, "record", record_probing):
        consent_object_to_marketing(actor=None, customer=customer)
    assert probed == ["consent.withdrawn"]
    assert free == []


def test_partner_sharing_is_direct_marketing_staff_cannot_grant_it_again(
    client, me, support_agent
):
    consent_answer(me, "partner_sharing")
    _object(client, "marketing")
    state = ConsentState.objects.get(customer=me, purpose__code="partner_sharing")
    assert not state.granted
    assert state.source == "objection"
    with pytest.raises(ConsentError) as refused:
        consent_grant(
            actor=support_agent,
            customer=me,
            purpose_code="partner_sharing",
            source="staff",
            reason="Customer asked on the phone",
        )
    assert refused.value.code == "objected"


def test_an_objection_withdraws_a_pending_opt_in_and_says_when_nothing_was_on(
    client, me
):
    from django.utils import timezone

    from apps.consent.models import OptInRequest
    from apps.consent.services import opt_in_request

    pending = opt_in_request(
        customer=me, purpose=Purpose.objects.get(code="marketing_email")
    )
    _object(client, "marketing")
    withdrawn = ConsentEvent.objects.filter(customer=me, source="objection")
    assert [e.purpose.code for e in withdrawn] == ["marketing_email"]
    pending = OptInRequest.objects.get(pk=pending.pk)
    assert pending.expires_at <= timezone.now()  # its link no longer confirms
    # A second objection: nothing granted or pending, nothing withdrawn.
    DataRequest.objects.all().delete()
    _object(client, "marketing")
    assert ConsentEvent.objects.filter(customer=me, source="objection").count() == 1
    request = DataRequest.objects.get()
    assert "you had agreed to none of it, so nothing was withdrawn" in request.outcome


def test_the_customers_own_objection_carries_their_evidence(client, me, privacy_admin):
    from apps.consent.services import evidence_hash
    from tests.customers.factories import make_customer

    consent_answer(me, "marketing_sms")
    response = client.post(
        reverse("portal:data"),
        {"kind": "objection", "objection_to": "marketing"},
        HTTP_USER_AGENT="Objecting browser",
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 302
    event = ConsentEvent.objects.get(customer=me, source="objection")
    assert event.evidence_hash
    assert event.evidence_hash == evidence_hash(
        ip="203.0.113.9", user_agent="Objecting browser"
    )
    # On a customer's behalf, staff have no evidence of the customer's own to give.
    other = make_customer()
    consent_answer(other, "marketing_sms")
    request_open(
        actor=privacy_admin,
        customer=other,
        kind="objection",
        objection_to="marketing",
        verification="Phone call, PIN checked",
    )
    assert (
        ConsentEvent.objects.get(customer=other, source="objection").evidence_hash == ""
    )


@pytest.mark.parametrize("status", ["completed", "refused"])
def test_a_review_whose_restriction_was_lifted_says_so_when_closed(
    client, me, privacy_admin, status
):
    from django.utils import timezone

    from apps.customers.services import customer_restriction_lift

    _object(client, "other")
    customer_restriction_lift(
        actor=privacy_admin,
        restriction=customer_restriction_active(customer=me),
        reason="Review done, customer told",
        customer_told=True,
    )
    request = request_transition(
        actor=privacy_admin,
        request=DataRequest.objects.get(),
        status=status,
        note="Our grounds were weighed",
    )
    day = timezone.localdate().isoformat()
    assert request.outcome.startswith("Our grounds were weighed. ")
    assert request.outcome.endswith(
        f"The use of your data was restricted from {day} until {day}, when we lifted "
        "the restriction after telling you."
    )
    assert "stays restricted" not in request.outcome
    assert customer_restriction_active(customer=me) is None
