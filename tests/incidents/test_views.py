import pytest
from django.urls import reverse

from apps.incidents.models import Incident, IncidentNotice
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer
from tests.incidents.factories import make_incident

pytestmark = pytest.mark.django_db


def test_register_an_incident_on_the_page(client, compliance_officer):
    sign_in(client, compliance_officer)
    response = client.post(
        reverse("incidents:list"),
        {
            "title": "Phishing of support staff",
            "kind": "suspected_breach",
            "severity": "medium",
            "detected_at": "2026-11-20T09:00",
            "aware_at": "2026-11-20T10:00",
            "risk_level": "undetermined",
        },
    )
    assert response.status_code == 302, response.content.decode()[:500]
    incident = Incident.objects.get()
    page = client.get(reverse("incidents:detail", args=[incident.pk]))
    assert "Phishing of support staff" in page.content.decode()


def test_the_detail_page_walks_through_affected_notify_and_status(
    client, privacy_admin, django_capture_on_commit_callbacks
):
    make_customer(country="ID", region="ID-JK")
    make_customer(country="US", region="US-CA", phone="+1 415 555 0100")
    incident = make_incident(privacy_admin)
    sign_in(client, privacy_admin)
    url = reverse("incidents:detail", args=[incident.pk])
    client.post(
        url, {"action": "affected", "scope": "countries", "countries": "ID, US"}
    )
    html = client.get(url).content.decode()
    assert "Affected customers: 2" in html
    assert "Indonesia UU PDP" in html
    assert "California" in html
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "notify"})
    assert IncidentNotice.objects.filter(status="sent").count() == 4
    client.post(url, {"action": "transition", "status": "notifying", "note": "sent"})
    incident.refresh_from_db()
    assert incident.status == "notifying"
    response = client.post(url, {"action": "transition", "status": "investigating"})
    assert response.status_code == 400
    assert "only moves forward" in response.content.decode()


def test_support_agents_cannot_see_incidents(client, support_agent):
    sign_in(client, support_agent)
    assert client.get(reverse("incidents:list")).status_code == 403
