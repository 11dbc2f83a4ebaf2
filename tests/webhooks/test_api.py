import pytest
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.webhooks.models import Delivery, DeliveryStatus, Endpoint
from apps.webhooks.services import deliveries_send_due, event_emit
from tests.customers.factories import make_customer
from tests.webhooks.receiver import Receiver

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

URL = "/api/v1/webhooks/"


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def create(user, **body):
    body = {"url": "https://crm.example/hooks", "events": ["consent.changed"], **body}
    return api(user).post(URL, body, format="json")


def test_a_privacy_admin_registers_an_endpoint_and_sees_its_secret_once(
    privacy_admin,
):
    response = create(privacy_admin, description="CRM")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["secret"].startswith("whsec_")
    assert body["url"] == "https://crm.example/hooks"
    assert body["events"] == ["consent.changed"]
    assert response["Location"].endswith(f"{URL}{body['id']}/")
    endpoint = Endpoint.objects.get()
    assert endpoint.secret == body["secret"]  # sealed at rest, opens to the same
    assert body["secret"].encode() not in bytes(
        Endpoint.objects.values_list("secret", flat=True).get()
    )
    listed = api(privacy_admin).get(URL).json()["results"]
    assert [e["id"] for e in listed] == [body["id"]]
    assert "secret" not in listed[0]
    detail = api(privacy_admin).get(f"{URL}{body['id']}/").json()
    assert "secret" not in detail
    assert detail["pending"] == detail["delivered"] == detail["dead"] == 0
    created = AuditEvent.objects.get(action="webhook.endpoint_created")
    assert "whsec_" not in str(created.details)
    assert "crm.example" not in str(created.details)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"url": "http://crm.example/h"}, "url", "must start with https://"),
        ({"url": "https://u:p@crm.example/h"}, "url", "user name or password"),
        ({"url": "not a url"}, "url", ""),
        ({"events": ["customer.exploded"]}, "events", ""),
        ({"events": []}, "events", ""),
    ],
)
def test_a_bad_url_or_event_type_is_a_400_naming_the_field(
    privacy_admin, settings, body, field, message
):
    settings.AMANAH_WEBHOOK_ALLOW_HTTP = False
    response = create(privacy_admin, **body)
    assert response.status_code == 400, response.content
    [error] = response.json()["errors"]
    assert error["field"].split(".")[0] == field  # events.0: the list's first item
    assert message in error["message"]
    assert not Endpoint.objects.exists()


@pytest.mark.parametrize("role", ["compliance_officer", "support_agent"])
def test_other_roles_get_403(request, role, privacy_admin):
    user = request.getfixturevalue(role)
    endpoint_id = create(privacy_admin).json()["id"]
    assert create(user).status_code == 403
    assert api(user).get(URL).status_code == 403
    assert api(user).get(f"{URL}{endpoint_id}/").status_code == 403
    assert api(user).delete(f"{URL}{endpoint_id}/").status_code == 403
    assert api(user).post(f"{URL}{endpoint_id}/replay/").status_code == 403
    assert api(user).get(f"{URL}{endpoint_id}/deliveries/").status_code == 403


def test_dead_letters_are_listed_and_replayed(privacy_admin, settings):
    settings.AMANAH_WEBHOOK_MAX_ATTEMPTS = 1
    receiver = Receiver(status=500).start()
    try:
        endpoint_id = create(privacy_admin, url=receiver.url).json()["id"]
        customer = make_customer()
        event_emit(type="consent.changed", customer_id=customer.pk, data={})
        deliveries_send_due()
        dead = api(privacy_admin).get(f"{URL}{endpoint_id}/deliveries/?status=dead")
        [row] = dead.json()["results"]
        assert row["status"] == "dead"
        assert row["last_response"] == "HTTP 500"
        assert row["type"] == "consent.changed"
        replay = api(privacy_admin).post(f"{URL}{endpoint_id}/replay/")
        assert replay.json() == {"replayed": 1}
        assert Delivery.objects.get().status == DeliveryStatus.PENDING
        receiver.status = 200
        deliveries_send_due()
        assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    finally:
        receiver.stop()


def test_deleting_an_endpoint_cancels_what_it_has_not_received(privacy_admin):
    endpoint_id = create(privacy_admin).json()["id"]
    event_emit(type="consent.changed", customer_id=make_customer().pk, data={})
    assert api(privacy_admin).delete(f"{URL}{endpoint_id}/").status_code == 204
    assert not Endpoint.objects.get().active
    assert Delivery.objects.get().status == DeliveryStatus.CANCELLED
    assert AuditEvent.objects.filter(action="webhook.endpoint_deleted").exists()
    assert api(privacy_admin).get(f"{URL}{endpoint_id}/").status_code == 404
    assert api(privacy_admin).get(URL).json()["results"] == []
    assert api(privacy_admin).delete(f"{URL}{endpoint_id}/").status_code == 404


def test_a_private_or_local_url_is_refused(privacy_admin, settings):
    settings.AMANAH_WEBHOOK_ALLOWED_NETWORKS = []
    for url in (
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.5:8443/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://192.168.1.10/hook",
    ):
        response = create(privacy_admin, url=url)
        assert response.status_code == 400, url
        [error] = response.json()["errors"]
        assert error["field"] == "url"
        assert "private or local address" in error["message"]
    assert not Endpoint.objects.exists()


def test_registering_an_active_url_again_is_a_400_naming_url(privacy_admin):
    assert create(privacy_admin).status_code == 201
    response = create(privacy_admin)
    assert response.status_code == 400, response.content
    [error] = response.json()["errors"]
    assert (error["field"], error["code"]) == ("url", "duplicate")
    assert Endpoint.objects.count() == 1


def test_an_endpoint_says_why_deliveries_wait_and_its_last_answer(
    privacy_admin, settings
):
    settings.AMANAH_WEBHOOK_MAX_ATTEMPTS = 1
    receiver = Receiver(status=503).start()
    try:
        create(privacy_admin, url=receiver.url)
        customer = make_customer()
        for _ in range(2):
            event_emit(type="consent.changed", customer_id=customer.pk, data={})
        deliveries_send_due()
    finally:
        receiver.stop()
    [endpoint] = api(privacy_admin).get(URL).json()["results"]
    assert (endpoint["pending"], endpoint["held"], endpoint["retrying"]) == (1, 1, 0)
    assert endpoint["dead"] == 1
    assert endpoint["last_response"] == "HTTP 503"
    assert endpoint["last_attempt_at"]
