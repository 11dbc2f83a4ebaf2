import pytest
from rest_framework.test import APIClient

from apps.monitoring.models import AlertStatus
from tests.errors import error_fields
from tests.monitoring.factories import make_alert

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_governance_roles_list_alerts(compliance_officer, support_agent):
    alert = make_alert(staff=support_agent, severity="high")
    make_alert(status=AlertStatus.DISMISSED, reason="QA")

    response = _client(compliance_officer).get("/api/v1/alerts/", {"status": "open"})

    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    [row] = body["results"]
    assert row["id"] == alert.pk
    assert row["staff"] == "support"
    assert row["severity"] == "high"
    assert row["evidence"] == {"not_found": 12, "distinct_ids": 12}
    assert row["incident"] is None


def test_a_system_alert_has_no_staff(privacy_admin):
    make_alert(staff=None, rule="key_rotation_off_schedule")
    [row] = _client(privacy_admin).get("/api/v1/alerts/").json()["results"]
    assert row["staff"] is None


def test_a_bad_status_is_400(compliance_officer):
    response = _client(compliance_officer).get("/api/v1/alerts/", {"status": "x"})
    assert response.status_code == 400
    assert "status" in error_fields(response)


def test_agents_and_anonymous_callers_are_refused(support_agent):
    assert _client(support_agent).get("/api/v1/alerts/").status_code == 403
    assert APIClient().get("/api/v1/alerts/").status_code in (401, 403)


def test_the_schema_documents_the_alerts_endpoint(compliance_officer):
    schema = _client(compliance_officer).get("/api/schema/", {"format": "json"})
    assert "/api/v1/alerts/" in schema.json()["paths"]
