"""Deleting an endpoint (soft, never failing a change in flight), the purge, and the
endpoint list's counts."""

import threading
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import transaction
from django.test import Client
from django.utils import timezone

from apps.audit import services as audit_services
from apps.crypto.models import DataKey
from apps.webhooks import selectors, tasks, views
from apps.webhooks.errors import WebhookError
from apps.webhooks.models import Delivery, DeliveryStatus, Endpoint, Event
from apps.webhooks.selectors import endpoint_list
from apps.webhooks.services import (
    _ANY_ENDPOINT,
    deliveries_purge,
    deliveries_send_all_due,
    deliveries_send_due,
    endpoint_delete,
    endpoint_url_set,
    event_emit,
)
from tests.accounts.helpers import sign_in
from tests.concurrency import at_once
from tests.customers.factories import make_customer
from tests.webhooks.factories import make_endpoint

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def emit(customer_id, n: int = 0, request_id=None) -> None:
    event_emit(
        type="consent.changed",
        customer_id=customer_id,
        data={"n": n},
        request_id=request_id,
    )


@pytest.mark.django_db(transaction=True)
def test_deleting_an_endpoint_while_a_change_emits_to_it_fails_neither(
    privacy_admin, receiver, monkeypatch
):
    """The change read the endpoint as active and inserted its delivery; the delete
    commits before it. The change still commits, and nothing is sent."""
    monkeypatch.setattr(tasks.deliveries_send_all_due_task, "delay", lambda: None)
    endpoint, _ = make_endpoint(privacy_admin, receiver.url)
    customer = make_customer()
    emitted, deleted = threading.Event(), threading.Event()

    def change():
        with transaction.atomic():
            emit(customer.pk)
            emitted.set()
            assert deleted.wait(10)
        return "committed"

    def delete():
        assert emitted.wait(10)
        endpoint_delete(actor=privacy_admin, endpoint=endpoint)
        deleted.set()
        return "deleted"

    assert at_once([change, delete]) == ["committed", "deleted"]
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.PENDING  # written after the delete
    assert deliveries_send_due() == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.CANCELLED
    assert receiver.received == []


def test_a_delete_cancels_pending_and_dead_deliveries_before_its_audit_record(
    privacy_admin, receiver, monkeypatch, django_capture_on_commit_callbacks
):
    endpoint, _ = make_endpoint(privacy_admin, receiver.url)
    emit(make_customer().pk)
    emit(make_customer().pk)
    Delivery.objects.filter(pk=Delivery.objects.order_by("id").first().pk).update(
        status=DeliveryStatus.DEAD
    )
    seen = []
    record = audit_services.record

    def spy(**kwargs):
        if kwargs.get("action") == "webhook.endpoint_deleted":
            seen.append(
                (
                    Endpoint.objects.get().active,
                    set(Delivery.objects.values_list("status", flat=True)),
                )
            )
        return record(**kwargs)

    monkeypatch.setattr(audit_services, "record", spy)
    cache.set(_ANY_ENDPOINT, 1)
    with django_capture_on_commit_callbacks(execute=True):
        endpoint_delete(actor=privacy_admin, endpoint=endpoint)
    assert seen == [(False, {DeliveryStatus.CANCELLED})]
    assert cache.get(_ANY_ENDPOINT) is None  # dropped on commit
    assert deliveries_send_all_due() == 0
    assert receiver.received == []
    assert list(endpoint_list()) == []


def test_a_cache_that_is_down_never_fails_registering_an_endpoint(
    privacy_admin, monkeypatch
):
    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    with monkeypatch.context() as patched:
        patched.setattr(cache, "set", down)
        endpoint, _ = make_endpoint(privacy_admin, "https://crm.example/h")
    assert Endpoint.objects.get() == endpoint


def test_a_deleted_endpoint_is_neither_replayed_nor_rotated(privacy_admin):
    endpoint, _ = make_endpoint(privacy_admin, "https://crm.example/h")
    endpoint_delete(actor=privacy_admin, endpoint=endpoint)
    client = Client()
    sign_in(client, privacy_admin)
    for action in ("replay", "rotate", "delete"):
        response = client.post(f"/webhooks/{endpoint.pk}/{action}/")
        assert response.status_code == 404
    assert list(Endpoint.objects.values_list("active", flat=True)) == [False]


def aged(days: int):
    return timezone.now() - timedelta(days=days)


def test_the_purge_deletes_finished_deliveries_and_events_past_the_keep_days(
    privacy_admin, settings
):
    settings.AMANAH_WEBHOOK_KEEP_DAYS = 30
    endpoint, _ = make_endpoint(privacy_admin, "https://crm.example/h")
    customer = make_customer().pk
    for n in range(6):
        emit(customer, n)
    rows = list(Delivery.objects.order_by("id"))
    old_delivered, new_delivered, old_cancelled, old_pending, old_dead, kept = rows
    Delivery.objects.filter(pk=old_delivered.pk).update(
        status="delivered", delivered_at=aged(31)
    )
    Delivery.objects.filter(pk=new_delivered.pk).update(
        status="delivered", delivered_at=aged(29)
    )
    Delivery.objects.filter(pk=old_cancelled.pk).update(
        status="cancelled", cancelled_at=aged(31)
    )
    Delivery.objects.filter(pk=old_dead.pk).update(status="dead", dead_at=aged(31))
    # What a request's page shows (GDPR art. 19) stays.
    Event.objects.filter(pk=kept.event_id).update(
        type="customer.erased", request_id="00000000-0000-0000-0000-000000000001"
    )
    Delivery.objects.filter(pk=kept.pk).update(
        status="delivered", delivered_at=aged(400)
    )
    Event.objects.update(created_at=aged(40))
    result = deliveries_purge()
    assert (result.deliveries, result.events, result.endpoints) == (2, 2, 0)
    assert set(Delivery.objects.values_list("pk", flat=True)) == {
        new_delivered.pk,
        old_pending.pk,
        old_dead.pk,
        kept.pk,
    }
    assert set(Event.objects.values_list("pk", flat=True)) == {
        new_delivered.event_id,
        old_pending.event_id,
        old_dead.event_id,
        kept.event_id,
    }
    assert Endpoint.objects.filter(pk=endpoint.pk).exists()


def test_the_purge_removes_a_deleted_endpoint_after_the_keep_days_unless_kept(
    privacy_admin, settings
):
    settings.AMANAH_WEBHOOK_KEEP_DAYS = 30
    bare, _ = make_endpoint(privacy_admin, "https://a.example/h")
    recent, _ = make_endpoint(privacy_admin, "https://b.example/h")
    holding, _ = make_endpoint(privacy_admin, "https://c.example/h")
    emit(make_customer().pk, request_id="00000000-0000-0000-0000-000000000002")
    Event.objects.update(type="customer.erased")
    Delivery.objects.exclude(endpoint=holding).delete()
    for endpoint in (bare, recent, holding):
        endpoint_delete(actor=privacy_admin, endpoint=endpoint)
    Endpoint.objects.exclude(pk=recent.pk).update(deleted_at=aged(31))
    result = deliveries_purge()
    assert result.endpoints == 1
    assert set(Endpoint.objects.values_list("pk", flat=True)) == {
        recent.pk,
        holding.pk,
    }


def test_the_purge_cancels_what_a_change_wrote_for_a_deleted_endpoint(privacy_admin):
    make_endpoint(privacy_admin, "https://a.example/h")
    emit(make_customer().pk)
    Endpoint.objects.update(active=False)  # deleted while the change was in flight
    deliveries_purge()
    assert Delivery.objects.get().status == DeliveryStatus.CANCELLED


def test_the_purge_task_runs_the_purge(privacy_admin):
    make_endpoint(privacy_admin, "https://a.example/h")
    emit(make_customer().pk)
    Delivery.objects.update(status="delivered", delivered_at=aged(31))
    Event.objects.update(created_at=aged(31))
    assert tasks.deliveries_purge_task.delay().get() == 2
    assert not Event.objects.exists()


def test_the_list_counts_each_status_only_up_to_a_cap(
    privacy_admin, monkeypatch, django_assert_num_queries
):
    monkeypatch.setattr(selectors, "COUNT_CAP", 3)
    monkeypatch.setattr(views, "COUNT_CAP", 3)
    make_endpoint(privacy_admin, "https://a.example/h")
    make_endpoint(privacy_admin, "https://b.example/h", events=["customer.erased"])
    customer = make_customer().pk
    for n in range(5):
        emit(customer, n)
    Delivery.objects.filter(
        pk__in=list(Delivery.objects.values_list("pk", flat=True)[:4])
    ).update(status="delivered", delivered_at=timezone.now())
    with django_assert_num_queries(1):
        first, second = endpoint_list()
    assert (first.pending, first.delivered, first.dead) == (1, 3, 0)
    assert (second.pending, second.delivered, second.dead) == (0, 0, 0)
    client = Client()
    sign_in(client, privacy_admin)
    page = client.get("/webhooks/")
    assert "<td>3+</td>" in page.content.decode()  # delivered: 4, counted up to 3
    assert page["Cache-Control"].startswith("max-age=0")
    assert "no-store" in page["Cache-Control"]


def test_the_purge_destroys_a_removed_endpoints_data_key(privacy_admin):
    """Its sealed signing secret can never be opened again."""
    endpoint, _ = make_endpoint(privacy_admin, "https://a.example/h")
    endpoint_delete(actor=privacy_admin, endpoint=endpoint)
    Endpoint.objects.update(deleted_at=aged(31))
    assert deliveries_purge().endpoints == 1
    key = DataKey.objects.get(pk=endpoint.data_key_id)
    assert key.destroyed_at is not None
    assert key.wrapped_key is None


def test_the_same_url_is_refused_while_active_and_free_once_deleted(privacy_admin):
    endpoint, _ = make_endpoint(privacy_admin, "https://a.example/h")
    with pytest.raises(WebhookError) as refused:
        make_endpoint(privacy_admin, "https://a.example/h")
    assert (refused.value.field, refused.value.code) == ("url", "duplicate")
    other, _ = make_endpoint(privacy_admin, "https://b.example/h")
    with pytest.raises(WebhookError):
        endpoint_url_set(actor=privacy_admin, endpoint=other, url="https://a.example/h")
    endpoint_delete(actor=privacy_admin, endpoint=endpoint)
    make_endpoint(privacy_admin, "https://a.example/h")
    assert Endpoint.objects.filter(active=True).count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_registrations_of_one_url_at_once_make_one_endpoint(privacy_admin):
    """The check and the partial unique index: the loser gets the same 400."""

    def register():
        try:
            make_endpoint(privacy_admin, "https://a.example/h")
        except WebhookError as exc:
            return exc.code
        return "created"

    assert sorted(at_once([register, register])) == ["created", "duplicate"]
    assert Endpoint.objects.count() == 1
