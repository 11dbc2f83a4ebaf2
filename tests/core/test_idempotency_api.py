"""Safe retries through the customers API: what is kept, what is not, and no kept
answer outlives the customer's erasure (apps/core/idempotency.py)."""

import json

import pytest
from rest_framework.test import APIClient

from apps.access.models import Interaction
from apps.core.models import IdempotencyRecord
from apps.retention.services import customer_erase
from tests.customers.factories import CANARY, make_canary, make_customer

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_kept_answer_showing_a_customer_is_forgotten_when_they_are_erased(
    privacy_admin,
):
    canary = make_canary()
    client = api(privacy_admin)
    url = f"/api/v1/customers/{canary.pk}/"
    etag = client.get(url)["ETag"]
    body = {"city": "Jakarta"}
    headers = {"Idempotency-Key": "patch-1", "If-Match": etag}
    first = client.patch(url, body, headers=headers)
    assert first.status_code == 200
    assert client.patch(url, body, headers=headers)["Idempotent-Replayed"] == "true"

    customer_erase(actor=privacy_admin, customer=canary)
    assert not IdempotencyRecord.objects.filter(subject=str(canary.pk)).exists()
    retry = client.patch(url, body, headers=headers)
    assert "Idempotent-Replayed" not in retry
    assert not any(value in retry.content.decode() for value in CANARY.values())


def test_a_reveal_is_never_kept(privacy_admin):
    customer = make_customer()
    client = api(privacy_admin)
    body = {"fields": ["email"], "reason": "Customer called about a refund"}
    headers = {"Idempotency-Key": "reveal-1"}
    url = f"/api/v1/customers/{customer.pk}/reveal/"
    assert client.post(url, body, headers=headers).status_code == 200
    again = client.post(url, body, headers=headers)
    assert again.status_code == 200
    assert "Idempotent-Replayed" not in again
    assert not IdempotencyRecord.objects.exists()


def test_a_stale_if_match_is_not_kept_so_the_retry_after_reading_again_works(
    privacy_admin,
):
    customer = make_customer()
    client = api(privacy_admin)
    url = f"/api/v1/customers/{customer.pk}/"
    stale = client.get(url)["ETag"]
    client.patch(url, {"city": "Bandung"}, headers={"If-Match": stale})
    key = {"Idempotency-Key": "patch-2"}
    refused = client.patch(url, {"city": "Jakarta"}, headers={**key, "If-Match": stale})
    assert refused.status_code == 412
    current = client.get(url)["ETag"]
    retried = client.patch(
        url, {"city": "Jakarta"}, headers={**key, "If-Match": current}
    )
    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried


def test_an_error_of_ours_rolls_the_change_back_so_a_retry_makes_it_once(
    support_agent, monkeypatch
):
    from redis.exceptions import ConnectionError as RedisConnectionError

    from apps.access import api as access_api

    customer = make_customer()
    real = access_api.interaction_open

    def open_then_fail(**kwargs):
        real(**kwargs)
        raise RedisConnectionError("down")  # answered 503 by the handler

    client = api(support_agent)
    body = {"customer": str(customer.pk), "kind": "support_case"}
    headers = {"Idempotency-Key": "open-1"}
    monkeypatch.setattr(access_api, "interaction_open", open_then_fail)
    assert (
        client.post("/api/v1/interactions/", body, headers=headers).status_code == 503
    )
    assert not Interaction.objects.exists()
    monkeypatch.setattr(access_api, "interaction_open", real)
    opened = client.post("/api/v1/interactions/", body, headers=headers)
    assert opened.status_code == 201
    assert Interaction.objects.count() == 1
    assert (
        json.loads(client.post("/api/v1/interactions/", body, headers=headers).content)
        == opened.json()
    )
