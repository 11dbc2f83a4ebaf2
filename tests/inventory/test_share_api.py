"""POST/GET /api/v1/inventory/recipients/{id}/shares/: recording a sharing of a
customer's data with a recipient (apps.inventory.services.data_share) through the API,
and the inventory's recipients with their endpoint."""

import json
import uuid

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from apps.accounts.services import api_token_create
from apps.audit.models import AuditEvent
from apps.customers.services import customer_restrict
from apps.inventory.models import Recipient, ShareRecord
from apps.inventory.services import recipient_endpoint_set
from apps.retention.services import customer_erase
from apps.webhooks import services as webhooks
from tests.consent.factories import consent_answer
from tests.customers.factories import make_customer
from tests.errors import error_code, error_fields

pytestmark = pytest.mark.django_db


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def _url(recipient) -> str:
    pk = recipient if isinstance(recipient, int) else recipient.pk
    return f"/api/v1/inventory/recipients/{pk}/shares/"


@pytest.fixture
def partner():
    """The seeded recipient gated by the `partner_sharing` consent."""
    return Recipient.objects.get(name="Marketing partner")


@pytest.fixture
def courier():
    """The seeded recipient no consent gates."""
    return Recipient.objects.get(name="Delivery partner")


def test_a_privacy_admin_records_a_share_with_a_consenting_customer(
    privacy_admin, partner
):
    customer = make_customer()
    consent_answer(customer, "partner_sharing")
    response = _api(privacy_admin).post(
        _url(partner), {"customer_id": str(customer.pk)}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    record = ShareRecord.objects.get()
    assert body == {
        "id": record.pk,
        "recipient": partner.pk,
        "customer_id": str(customer.pk),
        "allowed": True,
        "at": body["at"],
    }
    assert record.allowed
    assert record.customer_id == customer.pk
    assert response["Location"] == f"{_url(partner)}?customer_id={customer.pk}"
    event = AuditEvent.objects.get(action="data.shared")
    assert event.details == {"recipient": "Marketing partner"}


def test_a_recipient_no_consent_gates_needs_none(privacy_admin, courier):
    customer = make_customer()
    response = _api(privacy_admin).post(
        _url(courier), {"customer_id": str(customer.pk)}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["allowed"] is True


def test_without_the_gating_consent_it_is_a_403_recorded_and_audited(
    privacy_admin, partner
):
    customer = make_customer()
    response = _api(privacy_admin).post(
        _url(partner), {"customer_id": str(customer.pk)}, format="json"
    )
    assert response.status_code == 403
    assert error_code(response) == "consent"
    assert error_fields(response) == {
        "recipient": ["This customer has not agreed to sharing with this recipient."]
    }
    assert ShareRecord.objects.get().allowed is False
    event = AuditEvent.objects.get(action="data.share_refused")
    assert event.details == {"recipient": "Marketing partner", "why": "consent"}
    assert not AuditEvent.objects.filter(action="data.shared").exists()


def test_a_restricted_customer_is_refused_naming_the_body_s_field(
    privacy_admin, courier
):
    customer = make_customer()
    customer_restrict(
        actor=None, customer=customer, purpose="legal claims: a dispute", source="staff"
    )
    response = _api(privacy_admin).post(
        _url(courier), {"customer_id": str(customer.pk)}, format="json"
    )
    assert response.status_code == 403
    assert error_code(response) == "restricted"
    assert list(error_fields(response)) == ["customer_id"]
    assert ShareRecord.objects.get().allowed is False


def test_an_erased_customer_and_an_inactive_recipient_are_refused_with_why(
    privacy_admin, courier
):
    erased = make_customer()
    customer_erase(actor=privacy_admin, customer=erased)
    response = _api(privacy_admin).post(
        _url(courier), {"customer_id": str(erased.pk)}, format="json"
    )
    assert (response.status_code, error_code(response)) == (403, "erased")

    Recipient.objects.filter(pk=courier.pk).update(active=False)
    response = _api(privacy_admin).post(
        _url(courier), {"customer_id": str(make_customer().pk)}, format="json"
    )
    assert (response.status_code, error_code(response)) == (403, "inactive")
    assert list(error_fields(response)) == ["recipient"]
    assert not ShareRecord.objects.filter(allowed=True).exists()


def test_an_unknown_recipient_or_customer_is_a_404_and_records_nothing(
    privacy_admin, courier
):
    customer = make_customer()
    api = _api(privacy_admin)
    missing = api.post(_url(999_999), {"customer_id": str(customer.pk)}, format="json")
    assert (missing.status_code, error_code(missing)) == (404, "not_found")
    nobody = api.post(_url(courier), {"customer_id": str(uuid.uuid4())}, format="json")
    assert (nobody.status_code, error_code(nobody)) == (404, "not_found")
    assert api.post("/api/v1/inventory/recipients/x/shares/", {}).status_code == 404
    assert not ShareRecord.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="data.share").exists()


@pytest.mark.parametrize("body", [{}, {"customer_id": "not-a-uuid"}])
def test_a_missing_or_malformed_customer_id_is_a_400(privacy_admin, courier, body):
    response = _api(privacy_admin).post(_url(courier), body, format="json")
    assert response.status_code == 400
    assert list(error_fields(response)) == ["customer_id"]
    assert not ShareRecord.objects.exists()


def test_only_privacy_admins_record_shares(
    support_agent, delivery_agent, compliance_officer, courier
):
    customer = make_customer()
    for user in (support_agent, delivery_agent, compliance_officer):
        response = _api(user).post(
            _url(courier), {"customer_id": str(customer.pk)}, format="json"
        )
        assert response.status_code == 403, user.role
    assert not ShareRecord.objects.exists()


def test_a_token_needs_the_customers_write_scope(privacy_admin, courier):
    customer = make_customer()

    def client(scopes):
        issued = api_token_create(actor=privacy_admin, name=str(scopes), scopes=scopes)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.key}")
        return api

    body = {"customer_id": str(customer.pk)}
    refused = client(["read", "compliance:write"]).post(
        _url(courier), body, format="json"
    )
    assert (refused.status_code, error_code(refused)) == (403, "scope")
    assert not ShareRecord.objects.exists()
    ok = client(["customers:write"]).post(_url(courier), body, format="json")
    assert ok.status_code == 201


def test_a_retry_with_the_same_key_records_one_share(privacy_admin, courier):
    customer = make_customer()
    api = _api(privacy_admin)
    headers = {"Idempotency-Key": "share-1"}
    body = {"customer_id": str(customer.pk)}
    first = api.post(_url(courier), body, format="json", headers=headers)
    second = api.post(_url(courier), body, format="json", headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second["Idempotent-Replayed"] == "true"
    assert json.loads(second.content) == first.json()
    assert ShareRecord.objects.count() == 1
    other = api.post(
        _url(courier),
        {"customer_id": str(make_customer().pk)},
        format="json",
        headers=headers,
    )
    assert (other.status_code, error_code(other)) == (422, "idempotency_key_reused")


def test_a_refusal_is_not_kept_a_retry_after_consent_shares(privacy_admin, partner):
    customer = make_customer()
    api = _api(privacy_admin)
    headers = {"Idempotency-Key": "share-2"}
    body = {"customer_id": str(customer.pk)}
    refused = api.post(_url(partner), body, format="json", headers=headers)
    assert refused.status_code == 403
    consent_answer(customer, "partner_sharing")
    retried = api.post(_url(partner), body, format="json", headers=headers)
    assert retried.status_code == 201
    assert not retried.has_header("Idempotent-Replayed")
    assert list(
        ShareRecord.objects.order_by("pk").values_list("allowed", flat=True)
    ) == [False, True]


def test_governance_roles_list_a_recipient_s_shares_newest_first(
    privacy_admin, compliance_officer, support_agent, courier, partner
):
    first, second = make_customer(), make_customer()
    api = _api(privacy_admin)
    for customer in (first, second):
        body = {"customer_id": str(customer.pk)}
        assert api.post(_url(courier), body, format="json").status_code == 201
    api.post(_url(partner), {"customer_id": str(first.pk)}, format="json")  # refused
    reader = _api(compliance_officer)
    page = reader.get(_url(courier)).json()
    assert [s["customer_id"] for s in page["results"]] == [
        str(second.pk),
        str(first.pk),
    ]
    assert page["next"] is None
    one = reader.get(_url(courier), {"customer_id": str(first.pk)}).json()
    assert [s["customer_id"] for s in one["results"]] == [str(first.pk)]
    refused = reader.get(_url(partner)).json()["results"]
    assert [s["allowed"] for s in refused] == [False]
    paged = reader.get(_url(courier), {"page_size": 1}).json()
    assert len(paged["results"]) == 1
    assert paged["next"]
    bad = reader.get(_url(courier), {"customer_id": "nope"})
    assert list(error_fields(bad)) == ["customer_id"]
    assert reader.get(_url(999_999)).status_code == 404
    assert _api(support_agent).get(_url(courier)).status_code == 403


@pytest.fixture
def endpoints_resolved(monkeypatch):
    """`*.example` names resolve to a public address (as tests/webhooks/conftest.py
    has it); the cache's note that endpoints exist goes with the test's rows."""
    monkeypatch.setattr(webhooks, "_resolve", lambda host, port: ["93.184.215.14"])
    yield
    cache.set(webhooks._ANY_ENDPOINT, 0)


@pytest.mark.usefixtures("endpoints_resolved")
def test_the_inventory_lists_each_recipient_s_id_and_endpoint(
    privacy_admin, support_agent, partner, courier
):
    recipient_endpoint_set(
        actor=privacy_admin, recipient=partner, url="https://partner.example/hook"
    )
    partner.refresh_from_db()
    body = _api(support_agent).get("/api/v1/inventory/").json()
    recipients = {r["name"]: r for r in body["recipients"]}
    assert recipients["Marketing partner"]["id"] == partner.pk
    assert recipients["Marketing partner"]["endpoint"] == {
        "id": str(partner.endpoint_id),
        "url": "https://partner.example/hook",
    }
    assert recipients["Delivery partner"]["endpoint"] is None
    assert "secret" not in json.dumps(body)


def test_the_schema_documents_the_shares_operations(privacy_admin):
    schema = _api(privacy_admin).get("/api/schema.json").json()
    path = schema["paths"]["/api/v1/inventory/recipients/{recipient_id}/shares/"]
    post = path["post"]
    assert post["operationId"] == "share_with_recipient"
    assert {"201", "400", "403", "404", "409", "422"} <= set(post["responses"])
    assert "customers:write" in post["description"]
    assert "Idempotency-Key" in {p["name"] for p in post["parameters"]}
    assert path["get"]["operationId"] == "list_recipient_shares"
    recipient = schema["components"]["schemas"]["Recipient"]["properties"]
    assert {"id", "endpoint"} <= set(recipient)
