"""GDPR art. 19: an erasure or correction goes to each recipient that received the
customer's data, through its endpoint, and the request's page shows to whom and
when."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.customers.services import customer_update
from apps.inventory.models import Recipient
from apps.inventory.services import data_share, inventory_save, recipient_endpoint_set
from apps.requests.models import DataRequest
from apps.requests.services import request_open, request_transition
from apps.webhooks.models import Delivery, DeliveryStatus, Endpoint, Event, Scope
from apps.webhooks.services import (
    deliveries_purge,
    deliveries_send_all_due,
    endpoint_delete,
)
from tests.accounts.helpers import sign_in
from tests.portal.factories import make_account
from tests.webhooks.receiver import Receiver

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def recipients(privacy_admin):
    """A (with an endpoint) and B (with one too), ungated."""
    made = {}
    for name in ("Courier A", "Courier B"):
        made[name] = inventory_save(
            actor=privacy_admin,
            model=Recipient,
            name=name,
            data={"country": "ID", "data_categories": ["contact"], "purpose": "Ship"},
        )
    return made


@pytest.fixture
def two_receivers():
    a, b = Receiver().start(), Receiver().start()
    yield a, b
    a.stop()
    b.stop()


def test_an_erasure_reaches_only_the_recipient_that_received_the_data(
    privacy_admin, recipients, two_receivers, django_capture_on_commit_callbacks
):
    a, b = two_receivers
    secret = recipient_endpoint_set(
        actor=privacy_admin, recipient=recipients["Courier A"], url=a.url
    )
    assert secret.startswith("whsec_")
    recipient_endpoint_set(
        actor=privacy_admin, recipient=recipients["Courier B"], url=b.url
    )
    endpoint = Endpoint.objects.get(
        pk=Recipient.objects.get(name="Courier A").endpoint_id
    )
    assert endpoint.scope == Scope.RECIPIENTS
    customer = make_account(email="art19@example.com")
    data_share(
        actor=privacy_admin, recipient=recipients["Courier A"], customer=customer
    )
    # Consent-changes are not for recipients' endpoints.
    with django_capture_on_commit_callbacks(execute=True):
        request = request_open(actor=customer.user, customer=customer, kind="erasure")
    deliveries_send_all_due()
    assert [e["type"] for e in a.events()] == ["customer.erased"]
    assert a.events()[0]["data"]["customer_id"] == str(customer.pk)
    assert b.received == []

    client = Client()
    sign_in(client, privacy_admin)
    page = client.get(f"/compliance/requests/{request.pk}/").content.decode()
    assert "Passed on to (GDPR art. 19)" in page
    delivery = Delivery.objects.get(endpoint=endpoint)
    assert delivery.status == DeliveryStatus.DELIVERED
    assert (
        f"Courier A: customer.erased, delivered {delivery.delivered_at:%Y-%m-%d}"
        in page
    )
    assert "Courier B" not in page.split("Passed on to")[1].split("History")[0]


def test_a_correction_reaches_the_recipient_with_field_names(
    privacy_admin, recipients, two_receivers
):
    a, _ = two_receivers
    recipient_endpoint_set(
        actor=privacy_admin, recipient=recipients["Courier A"], url=a.url
    )
    customer = make_account(email="fix@example.com")
    data_share(
        actor=privacy_admin, recipient=recipients["Courier A"], customer=customer
    )
    request = request_open(
        actor=customer.user,
        customer=customer,
        kind="rectification",
        field="city",
        new_value="Bandung",
    )
    request_transition(actor=privacy_admin, request=request, status="completed")
    deliveries_send_all_due()
    [event] = a.events()
    assert event["type"] == "customer.rectified"
    assert event["data"] == {"customer_id": str(customer.pk), "fields": ["city"]}
    assert DataRequest.objects.get(pk=request.pk).status == "completed"


def test_changing_a_recipients_url_keeps_its_endpoint_and_secret(
    privacy_admin, recipients
):
    recipient = recipients["Courier A"]
    assert recipient_endpoint_set(
        actor=privacy_admin, recipient=recipient, url="https://a.example/hook"
    )
    assert (
        recipient_endpoint_set(
            actor=privacy_admin, recipient=recipient, url="https://a.example/v2"
        )
        is None
    )
    assert Endpoint.objects.get().url == "https://a.example/v2"


def test_the_inventory_page_sets_an_endpoint_and_shows_its_secret_once(
    privacy_admin, recipients
):
    client = Client()
    sign_in(client, privacy_admin)
    recipient = recipients["Courier A"]
    url = f"/compliance/inventory/recipients/{recipient.pk}/endpoint/"
    response = client.post(url, {"url": "https://a.example/hook"})
    assert response.status_code == 201
    assert 'id="webhook-secret">whsec_' in response.content.decode()
    again = client.get("/compliance/inventory/").content.decode()
    assert "whsec_" not in again
    assert "https://a.example/hook" in again
    refused = client.post(url, {"url": "ftp://a.example/hook"})
    assert refused.status_code == 400
    assert "The URL must start with https://" in refused.content.decode()


def test_only_privacy_admins_set_a_recipients_endpoint(compliance_officer, recipients):
    client = Client()
    sign_in(client, compliance_officer)
    recipient = recipients["Courier A"]
    client.post(
        f"/compliance/inventory/recipients/{recipient.pk}/endpoint/",
        {"url": "https://a.example/hook"},
    )
    assert not Endpoint.objects.exists()


def passed_on_section(client, request) -> list[str]:
    page = client.get(f"/compliance/requests/{request.pk}/").content.decode()
    section = page.split("Passed on to (GDPR art. 19)")[1].split("<h2>History")[0]
    return re.findall(r"<li>([^<]*)</li>", section)


def test_the_request_page_shows_what_this_request_passed_on_to_each_recipient(
    privacy_admin, recipients, two_receivers, settings
):
    """Two recipients on one endpoint are each named; a later correction by staff
    is not this request's; deleting the endpoint and purging keep the record."""
    a, _ = two_receivers
    recipient_endpoint_set(
        actor=privacy_admin, recipient=recipients["Courier A"], url=a.url
    )
    endpoint = Endpoint.objects.get()
    Recipient.objects.filter(name="Courier B").update(endpoint=endpoint)
    customer = make_account(email="two@example.com")
    for name in ("Courier A", "Courier B"):
        data_share(actor=privacy_admin, recipient=recipients[name], customer=customer)
    request = request_open(
        actor=customer.user,
        customer=customer,
        kind="rectification",
        field="city",
        new_value="Bandung",
    )
    request_transition(actor=privacy_admin, request=request, status="completed")
    customer_update(actor=privacy_admin, customer=customer, data={"city": "Medan"})
    deliveries_send_all_due()
    assert len(a.events()) == 2  # the request's correction, then the staff's
    client = Client()
    sign_in(client, privacy_admin)
    day = f"{timezone.now():%Y-%m-%d}"
    shown = passed_on_section(client, request)
    assert all(line.endswith(" UTC") for line in shown)  # the zone is named
    assert [line.rsplit(" ", 2)[0] for line in shown] == [
        f"Courier A: customer.rectified, delivered {day}",
        f"Courier B: customer.rectified, delivered {day}",
    ]

    endpoint_delete(actor=privacy_admin, endpoint=endpoint)
    long_ago = timezone.now() - timedelta(days=settings.AMANAH_WEBHOOK_KEEP_DAYS + 1)
    Endpoint.objects.update(deleted_at=long_ago)
    Delivery.objects.update(delivered_at=long_ago)
    Event.objects.update(created_at=long_ago)
    result = deliveries_purge()
    assert (result.deliveries, result.events, result.endpoints) == (1, 1, 0)
    day = f"{long_ago:%Y-%m-%d}"
    assert [line.rsplit(" ", 2)[0] for line in passed_on_section(client, request)] == [
        f"Courier A: customer.rectified, delivered {day}",
        f"Courier B: customer.rectified, delivered {day}",
    ]


def test_a_deleted_recipient_endpoint_is_replaced_by_a_new_one(
    privacy_admin, recipients
):
    recipient = recipients["Courier A"]
    recipient_endpoint_set(
        actor=privacy_admin, recipient=recipient, url="https://a.example/hook"
    )
    old = Endpoint.objects.get()
    endpoint_delete(actor=privacy_admin, endpoint=old)
    secret = recipient_endpoint_set(
        actor=privacy_admin,
        recipient=Recipient.objects.get(pk=recipient.pk),
        url="https://a.example/v2",
    )
    assert secret.startswith("whsec_")
    new = Endpoint.objects.get(active=True)
    assert new.pk != old.pk
    assert Recipient.objects.get(pk=recipient.pk).endpoint_id == new.pk


def test_the_inventory_page_is_never_cached(privacy_admin, recipients):
    client = Client()
    sign_in(client, privacy_admin)
    recipient = recipients["Courier A"]
    response = client.post(
        f"/compliance/inventory/recipients/{recipient.pk}/endpoint/",
        {"url": "https://a.example/hook"},
    )
    assert "no-store" in response["Cache-Control"]


def test_a_recipient_without_an_endpoint_is_listed_to_be_told_by_staff(
    privacy_admin, recipients, two_receivers, django_capture_on_commit_callbacks
):
    """W1 and W5: each recipient that received the data is on the request's page and
    in its API answer; one without an endpoint says so; one that received nothing is
    not listed."""
    a, _ = two_receivers
    recipient_endpoint_set(
        actor=privacy_admin, recipient=recipients["Courier A"], url=a.url
    )
    courier_c = inventory_save(
        actor=privacy_admin,
        model=Recipient,
        name="Courier C",
        data={"country": "ID", "data_categories": ["contact"], "purpose": "Ship"},
    )
    customer = make_account(email="told@example.com")
    for recipient in (recipients["Courier A"], courier_c, courier_c):
        data_share(actor=privacy_admin, recipient=recipient, customer=customer)
    with django_capture_on_commit_callbacks(execute=True):
        request = request_open(actor=customer.user, customer=customer, kind="erasure")
    deliveries_send_all_due()

    client = Client()
    sign_in(client, privacy_admin)
    shown = passed_on_section(client, request)
    assert len(shown) == 2
    assert shown[0].startswith("Courier A: customer.erased, delivered ")
    assert shown[0].endswith(" UTC")
    assert shown[1] == "Courier C: no endpoint: tell them yourself"

    api = APIClient()
    api.force_authenticate(privacy_admin)
    body = api.get(f"/api/v1/requests/{request.pk}/").json()
    assert [
        (p["recipient"], p["has_endpoint"], p["type"], p["status"])
        for p in body["passed_on"]
    ] == [
        ("Courier A", True, "customer.erased", "delivered"),
        ("Courier C", False, "", ""),
    ]
    assert body["passed_on"][0]["delivered_at"]
    assert body["passed_on"][1]["delivered_at"] is None


def test_other_kinds_of_request_pass_nothing_on(privacy_admin, recipients):
    customer = make_account(email="access@example.com")
    data_share(
        actor=privacy_admin, recipient=recipients["Courier A"], customer=customer
    )
    request = request_open(actor=customer.user, customer=customer, kind="access")
    api = APIClient()
    api.force_authenticate(privacy_admin)
    assert api.get(f"/api/v1/requests/{request.pk}/").json()["passed_on"] == []


def test_two_recipients_given_one_url_share_its_endpoint(
    privacy_admin, recipients, two_receivers
):
    """One URL, one active endpoint (W4): the second recipient shares it, and an
    erasure of a customer both received is sent once, naming both."""
    a, _ = two_receivers
    secret = recipient_endpoint_set(
        actor=privacy_admin, recipient=recipients["Courier A"], url=a.url
    )
    assert secret.startswith("whsec_")
    assert (
        recipient_endpoint_set(
            actor=privacy_admin, recipient=recipients["Courier B"], url=a.url
        )
        is None
    )
    endpoint = Endpoint.objects.get()
    assert set(
        Recipient.objects.filter(name__startswith="Courier").values_list(
            "endpoint_id", flat=True
        )
    ) == {endpoint.pk}
    customer = make_account(email="both@example.com")
    for name in ("Courier A", "Courier B"):
        data_share(actor=privacy_admin, recipient=recipients[name], customer=customer)
    customer_update(actor=privacy_admin, customer=customer, data={"city": "Medan"})
    deliveries_send_all_due()
    assert len(a.events()) == 1
    assert Delivery.objects.get().recipients == ["Courier A", "Courier B"]


def test_a_recipient_leaving_a_shared_endpoint_never_moves_the_others(
    privacy_admin, recipients, two_receivers
):
    """Courier B's events keep going to the URL it was given; Courier A gets an
    endpoint of its own; an endpoint left to no recipient is deleted."""
    a, b = two_receivers
    recipient_endpoint_set(
        actor=privacy_admin, recipient=recipients["Courier A"], url=a.url
    )
    recipient_endpoint_set(
        actor=privacy_admin, recipient=recipients["Courier B"], url=a.url
    )
    shared = Endpoint.objects.get()
    secret = recipient_endpoint_set(
        actor=privacy_admin, recipient=recipients["Courier A"], url=b.url
    )
    assert secret.startswith("whsec_")
    shared.refresh_from_db()
    assert shared.url == a.url
    assert shared.active
    for recipient in recipients.values():
        recipient.refresh_from_db()
    assert recipients["Courier B"].endpoint_id == shared.pk
    assert recipients["Courier A"].endpoint_id != shared.pk
    # Courier B moves to Courier A's new URL: its old endpoint has no one left.
    recipient_endpoint_set(
        actor=privacy_admin, recipient=recipients["Courier B"], url=b.url
    )
    shared.refresh_from_db()
    assert not shared.active
    assert Endpoint.objects.filter(deleted_at__isnull=True).count() == 1
