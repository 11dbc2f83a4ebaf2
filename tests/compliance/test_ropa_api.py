"""GET /api/v1/ropa/: the record as JSON or CSV, for governance roles only."""

import csv
import io
import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.compliance.models import ProcessingActivity
from apps.compliance.ropa import CSV_COLUMNS
from tests.accounts.helpers import sign_in
from tests.errors import error_code, error_fields

pytestmark = pytest.mark.django_db

URL = "/api/v1/ropa/"


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.mark.parametrize("role", ["compliance_officer", "privacy_admin"])
def test_governance_roles_get_json_by_default_and_on_request(request, role):
    api = _api(request.getfixturevalue(role))
    default = api.get(URL)
    asked = api.get(URL, {"format": "json"})
    for response in (default, asked):
        assert response.status_code == 200
        assert response["Content-Type"] == "application/json"
    assert default.json() == asked.json()
    body = asked.json()
    assert body["controller_country"] == "ID"
    codes = [a["code"] for a in body["activities"]]
    assert len(codes) == ProcessingActivity.objects.count()
    sharing = next(a for a in body["activities"] if a["code"] == "partner-sharing")
    assert sharing["transfers"] == [
        {
            "to": "Marketing partner",
            "kind": "recipient",
            "country": "SG",
            "safeguards": "Standard contractual clauses",
        }
    ]
    assert sharing["owner"] == "Head of Marketing"
    assert sharing["reviewed_at"] is None
    assert sharing["review_due"] is True


def test_format_csv_is_text_csv_whatever_is_accepted(compliance_officer):
    response = _api(compliance_officer).get(
        URL, {"format": "csv"}, HTTP_ACCEPT="application/json"
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert 'filename="ropa.csv"' in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == CSV_COLUMNS
    assert len(rows) == 1 + ProcessingActivity.objects.count()
    # And JSON asked by `format` is JSON, even for a client that accepts CSV first.
    response = _api(compliance_officer).get(
        URL, {"format": "json"}, HTTP_ACCEPT="text/csv"
    )
    assert response["Content-Type"] == "application/json"
    json.loads(response.content)


def test_the_api_and_the_pages_download_say_the_same(client, compliance_officer):
    sign_in(client, compliance_officer)
    page = client.get(reverse("compliance:ropa"), {"format": "json"})
    api = _api(compliance_officer).get(URL, {"format": "json"})
    assert json.loads(page.content) == api.json()
    page = client.get(reverse("compliance:ropa"), {"format": "csv"})
    api = _api(compliance_officer).get(URL, {"format": "csv"})
    assert page.content == api.content


@pytest.mark.parametrize("role", ["support_agent", "delivery_agent", "customer_user"])
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_other_roles_get_a_json_403(request, role, fmt):
    response = _api(request.getfixturevalue(role)).get(URL, {"format": fmt})
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    assert response.json()["status"] == 403


def test_no_credentials_is_a_401():
    assert APIClient().get(URL, {"format": "csv"}).status_code == 401


def test_another_format_or_parameter_is_a_400(compliance_officer):
    api = _api(compliance_officer)
    response = api.get(URL, {"format": "xml"})
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert set(error_fields(response)) == {"format"}
    response = api.get(URL, {"page": "2"})
    assert response.status_code == 400
    assert error_code(response) == "unknown_parameter"


def test_the_schema_declares_json_and_csv(privacy_admin):
    schema = _api(privacy_admin).get("/api/schema.json").json()
    operation = schema["paths"]["/api/v1/ropa/"]["get"]
    assert operation["operationId"] == "get_ropa"
    assert set(operation["responses"]["200"]["content"]) == {
        "application/json",
        "text/csv",
    }
    [param] = [p for p in operation["parameters"] if p["name"] == "format"]
    assert param["in"] == "query"
    assert set(param["schema"]["enum"]) == {"csv", "json"}
    assert {"401", "403"} <= set(operation["responses"])
