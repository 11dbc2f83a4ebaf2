"""POST /api/v1/requests/: privacy admins open a request on a customer's behalf."""

import uuid
from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from apps.accounts.services import api_token_create
from apps.audit.models import AuditEvent
from apps.requests.models import DataRequest
from apps.retention.services import customer_erase
from tests.errors import error_code, error_fields
from tests.portal.factories import make_account

pytestmark = pytest.mark.django_db

URL = "/api/v1/requests/"


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.fixture
def customer():
    return make_account(email="br@example.com", country="BR", region="BR-SP")


def _body(customer, **overrides):
    body = {
        "customer": str(customer.pk),
        "kind": "objection",
        "objection_to": "other",
        "how_verified": "Phone call, PIN checked",
    }
    body.update(overrides)
    return body


def test_a_privacy_admin_opens_a_request_with_its_due_date(privacy_admin, customer):
    response = _api(privacy_admin).post(URL, _body(customer), format="json")
    assert response.status_code == 201
    request = DataRequest.objects.get()
    body = response.json()
    assert body["id"] == str(request.pk)
    assert body["customer"] == str(customer.pk)
    assert body["regime"] == "LGPD"
    assert body["due_rule_source"] == "LGPD art. 19 II"
    assert body["due_at"] == request.due_at.isoformat().replace("+00:00", "Z")
    assert request.due_at == request.received_at + timedelta(days=15)
    assert request.verification == "Phone call, PIN checked"
    assert request.opened_by == privacy_admin
    assert response["Location"] == f"/api/v1/requests/{request.pk}/"
    assert AuditEvent.objects.filter(action="request.opened").count() == 1
    # The Location answers with the same request.
    again = _api(privacy_admin).get(response["Location"])
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]


def test_a_rectification_takes_the_field_and_the_new_value(privacy_admin, customer):
    api = _api(privacy_admin)
    missing = api.post(
        URL, _body(customer, kind="rectification", field="city"), format="json"
    )
    assert missing.status_code == 400
    assert error_fields(missing) == {"new_value": ["Give the correct value."]}
    response = api.post(
        URL,
        _body(customer, kind="rectification", field="city", new_value="Recife"),
        format="json",
    )
    assert response.status_code == 201
    request = DataRequest.objects.get()
    assert (request.field, request.new_value) == ("city", "Recife")
    assert "Recife" not in str(response.json())


def test_how_verified_is_required_and_named(privacy_admin, customer):
    api = _api(privacy_admin)
    body = _body(customer)
    del body["how_verified"]
    response = api.post(URL, body, format="json")
    assert response.status_code == 400
    assert set(error_fields(response)) == {"how_verified"}
    # Too short to say anything: the service's check, under the API's name.
    response = api.post(URL, _body(customer, how_verified="ok"), format="json")
    assert response.status_code == 400
    assert set(error_fields(response)) == {"how_verified"}
    assert not DataRequest.objects.exists()


def test_an_objection_must_say_what_it_is_to(privacy_admin, customer):
    api = _api(privacy_admin)
    body = _body(customer)
    del body["objection_to"]
    response = api.post(URL, body, format="json")
    assert response.status_code == 400
    assert set(error_fields(response)) == {"objection_to"}
    blank = api.post(URL, _body(customer, objection_to=""), format="json")
    assert blank.status_code == 400
    assert set(error_fields(blank)) == {"objection_to"}
    assert not DataRequest.objects.exists()
    # Another kind needs none.
    other = _body(customer, kind="access")
    del other["objection_to"]
    assert api.post(URL, other, format="json").status_code == 201


def test_a_marketing_objection_is_not_refused_while_a_review_is_open(
    privacy_admin, customer
):
    api = _api(privacy_admin)
    assert api.post(URL, _body(customer), format="json").status_code == 201
    response = api.post(URL, _body(customer, objection_to="marketing"), format="json")
    assert response.status_code == 201
    assert response.json()["status"] == "completed"


def test_an_unknown_customer_is_a_404(privacy_admin):
    response = _api(privacy_admin).post(
        URL,
        {
            "customer": str(uuid.uuid4()),
            "kind": "objection",
            "objection_to": "other",
            "how_verified": "PIN ok",
        },
        format="json",
    )
    assert response.status_code == 404
    assert error_code(response) == "not_found"
    assert not DataRequest.objects.exists()


def test_an_erased_customer_is_a_400_naming_customer(privacy_admin, customer):
    customer_erase(actor=None, customer=customer)
    response = _api(privacy_admin).post(URL, _body(customer), format="json")
    assert response.status_code == 400
    assert error_fields(response) == {"customer": ["This customer was erased."]}
    assert not DataRequest.objects.exists()


def test_a_second_open_request_of_the_kind_is_a_409(privacy_admin, customer):
    api = _api(privacy_admin)
    assert api.post(URL, _body(customer), format="json").status_code == 201
    response = api.post(URL, _body(customer), format="json")
    assert response.status_code == 409
    assert set(error_fields(response)) == {"kind"}
    assert DataRequest.objects.count() == 1


@pytest.mark.parametrize("role", ["compliance_officer", "support_agent"])
def test_other_roles_are_refused(request, role, customer):
    response = _api(request.getfixturevalue(role)).post(
        URL, _body(customer), format="json"
    )
    assert response.status_code == 403
    assert not DataRequest.objects.exists()


def test_a_token_needs_the_compliance_write_scope(privacy_admin, customer):
    def client(scopes):
        key = api_token_create(actor=privacy_admin, name=str(scopes), scopes=scopes)
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {key.key}")
        return api

    refused = client(["read"]).post(URL, _body(customer), format="json")
    assert refused.status_code == 403
    assert error_code(refused) == "scope"
    ok = client(["read", "compliance:write"]).post(URL, _body(customer), format="json")
    assert ok.status_code == 201


def test_a_retry_with_the_same_key_opens_one_request(privacy_admin, customer):
    api = _api(privacy_admin)
    headers = {"Idempotency-Key": "open-1"}
    first = api.post(URL, _body(customer), format="json", headers=headers)
    second = api.post(URL, _body(customer), format="json", headers=headers)
    assert (first.status_code, second.status_code) == (201, 201)
    assert second["Idempotent-Replayed"] == "true"
    assert second.json() == first.json()
    assert DataRequest.objects.count() == 1


def test_the_schema_declares_open_request(privacy_admin):
    schema = _api(privacy_admin).get("/api/schema.json").json()
    operation = schema["paths"]["/api/v1/requests/"]["post"]
    assert operation["operationId"] == "open_request"
    assert "compliance:write" in operation["description"]
    assert "Location" in operation["responses"]["201"]["headers"]
    assert {"400", "403", "404", "409"} <= set(operation["responses"])
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"customer", "kind", "how_verified"} <= set(body["required"])
