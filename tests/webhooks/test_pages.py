import re

import pytest
from django.test import Client

from apps.audit.models import AuditEvent
from apps.webhooks.models import Delivery, DeliveryStatus, Endpoint
from apps.webhooks.services import deliveries_send_due, event_emit
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer
from tests.webhooks.receiver import Receiver

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def client_for(user) -> Client:
    client = Client()
    sign_in(client, user)
    return client


def test_a_privacy_admin_adds_an_endpoint_and_sees_its_secret_once(privacy_admin):
    """POST/redirect/GET: the secret is on the page after the redirect, once; a
    reload shows it no more and posts nothing."""
    client = client_for(privacy_admin)
    assert "Webhooks" in client.get("/webhooks/").content.decode()
    response = client.post(
        "/webhooks/",
        {"url": "https://crm.example/h", "events": ["consent.changed"]},
    )
    assert response.status_code == 302
    assert response["Location"] == "/webhooks/"
    # Only the endpoint's id is noted in the session, never the secret.
    assert "whsec_" not in str(dict(client.session))
    response = client.get("/webhooks/")
    assert "no-store" in response["Cache-Control"]
    secret = re.search(r'id="webhook-secret">(whsec_[^<]+)<', response.content.decode())
    assert secret
    assert secret.group(1) == Endpoint.objects.get().secret
    page = client.get("/webhooks/").content.decode()
    assert "whsec_" not in page
    assert "https://crm.example/h" in page
    assert Endpoint.objects.count() == 1


def test_adding_the_same_url_again_is_refused_naming_the_url(privacy_admin):
    client = client_for(privacy_admin)
    form = {"url": "https://crm.example/h", "events": ["consent.changed"]}
    assert client.post("/webhooks/", form).status_code == 302
    response = client.post("/webhooks/", form)
    assert response.status_code == 400
    assert "An endpoint with this URL exists already." in response.content.decode()
    assert Endpoint.objects.count() == 1


def test_the_events_box_spans_the_form_and_overlaps_no_field(privacy_admin):
    """W7: the events fieldset (wider than a grid column) gets a row of its own."""
    page = client_for(privacy_admin).get("/webhooks/").content.decode()
    assert '<div class="field wide"><fieldset><legend>Events</legend>' in page


def test_the_list_says_why_deliveries_wait_and_the_last_answer(privacy_admin, settings):
    """W3: pending deliveries held behind a customer's dead letter, those being
    retried, and the endpoint's last answer with its time and zone."""
    settings.AMANAH_WEBHOOK_MAX_ATTEMPTS = 2
    receiver = Receiver(status=503).start()
    try:
        client = client_for(privacy_admin)
        client.post("/webhooks/", {"url": receiver.url, "events": ["consent.changed"]})
        held, retried = make_customer(), make_customer()
        for n in range(3):
            event_emit(type="consent.changed", customer_id=held.pk, data={"n": n})
        deliveries_send_due()
        deliveries_send_due()  # the first of `held` is a dead letter now
        event_emit(type="consent.changed", customer_id=retried.pk, data={})
        deliveries_send_due()  # failed once, to be retried
        page = client.get("/webhooks/").content.decode()
    finally:
        receiver.stop()
    row = page.split('class="pending">')[1].split("</td>")[0]
    assert row.startswith("3")
    assert "1 being retried" in row
    assert "2 held behind a dead letter" in row
    last = page.split('class="last-answer">')[1].split("</td>")[0]
    assert re.fullmatch(r"HTTP 503, \d{4}-\d\d-\d\d \d\d:\d\d UTC", last)


def test_a_refused_url_is_shown_on_the_form(privacy_admin, settings):
    settings.AMANAH_WEBHOOK_ALLOW_HTTP = False
    response = client_for(privacy_admin).post(
        "/webhooks/", {"url": "http://crm.example/h", "events": ["consent.changed"]}
    )
    assert response.status_code == 400
    assert "The URL must start with https://" in response.content.decode()


def test_dead_letters_are_listed_and_the_replay_button_requeues_them(
    privacy_admin, settings
):
    settings.AMANAH_WEBHOOK_MAX_ATTEMPTS = 1
    receiver = Receiver(status=503).start()
    try:
        client = client_for(privacy_admin)
        client.post("/webhooks/", {"url": receiver.url, "events": ["consent.changed"]})
        endpoint = Endpoint.objects.get()
        event_emit(type="consent.changed", customer_id=make_customer().pk, data={})
        deliveries_send_due()
        page = client.get("/webhooks/").content.decode()
        assert "Dead letters of" in page
        assert "HTTP 503" in page
        response = client.post(f"/webhooks/{endpoint.pk}/replay/")
        assert response.status_code == 302
        assert Delivery.objects.get().status == DeliveryStatus.PENDING
    finally:
        receiver.stop()


def test_rotating_the_secret_shows_the_new_one_once(privacy_admin):
    client = client_for(privacy_admin)
    client.post(
        "/webhooks/", {"url": "https://crm.example/h", "events": ["consent.changed"]}
    )
    endpoint = Endpoint.objects.get()
    old = endpoint.secret
    client.get("/webhooks/")  # the first secret shown
    response = client.post(f"/webhooks/{endpoint.pk}/rotate/")
    assert response.status_code == 302
    new = Endpoint.objects.get().secret
    assert new != old
    assert new in client.get("/webhooks/").content.decode()
    assert new not in client.get("/webhooks/").content.decode()
    assert AuditEvent.objects.filter(action="webhook.secret_rotated").exists()


def test_other_staff_get_403(compliance_officer, support_agent):
    for user in (compliance_officer, support_agent):
        assert client_for(user).get("/webhooks/").status_code == 403
