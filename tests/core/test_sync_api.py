"""Sync (docs/API.md, "Sync"): what changed since a time, read on by cursor, for
customers, consents and customers' requests; ids and states, never personal data."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.consent.services import consent_withdraw
from apps.requests.services import request_open
from apps.retention.services import customer_erase
from tests.consent.factories import consent_answer, reseed_purposes
from tests.customers.factories import CANARY, make_canary, make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settled_at_once(settings):
    settings.AMANAH_SYNC_SETTLE_SECONDS = 0


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def read_all(client: APIClient, url: str, **params) -> list[dict]:
    """Every row so far, as a syncing client reads: follow `next` (never null on a
    sync list) until a page brings nothing."""
    page = client.get(url, {"page_size": 2, **params})
    assert page.status_code == 200, page.content
    rows = page.json()["results"]
    while page.json()["results"]:
        assert page.json()["next"]
        page = client.get(page.json()["next"])
        rows += page.json()["results"]
    assert page.json()["next"]  # kept, to ask again later
    return rows


def test_the_customers_feed_gives_creations_and_erasures_as_ids_and_states(
    privacy_admin,
):
    canary = make_canary()
    other = make_customer()
    client = api(privacy_admin)
    rows = read_all(client, "/api/v1/customers/changes/")
    assert [row["id"] for row in rows] == [str(canary.pk), str(other.pk)]
    assert not any(value in json.dumps(rows) for value in CANARY.values())

    since = timezone.now()
    customer_erase(actor=privacy_admin, customer=canary)
    rows = read_all(client, "/api/v1/customers/changes/", updated_since=since)
    assert [(row["id"], row["erased"]) for row in rows] == [(str(canary.pk), True)]


def test_the_feed_holds_back_changes_younger_than_the_settle_window(
    privacy_admin, settings
):
    settings.AMANAH_SYNC_SETTLE_SECONDS = 60
    make_customer()
    assert read_all(api(privacy_admin), "/api/v1/customers/changes/") == []


def test_a_cursor_kept_from_the_last_page_reads_on_to_later_changes(privacy_admin):
    first = make_customer()
    client = api(privacy_admin)
    page = client.get("/api/v1/customers/changes/", {"page_size": 1}).json()
    assert [row["id"] for row in page["results"]] == [str(first.pk)]
    kept = page["next"]  # never null on a sync list: the client keeps it
    assert client.get(kept).json()["results"] == []  # nothing new yet
    later = make_customer()
    page = client.get(kept).json()
    assert [row["id"] for row in page["results"]] == [str(later.pk)]
    assert client.get(page["next"]).json()["results"] == []


def test_agents_may_not_read_the_customers_feed(support_agent):
    response = api(support_agent).get("/api/v1/customers/changes/")
    assert response.status_code == 403


def test_the_consent_feed_gives_withdrawals(privacy_admin):
    reseed_purposes()
    customer = make_customer()
    consent_answer(customer, "marketing_sms")
    since = timezone.now()
    consent_withdraw(
        actor=privacy_admin,
        customer=customer,
        purpose_code="marketing_sms",
        source="staff",
        reason="Customer asked on the phone",
    )
    rows = read_all(api(privacy_admin), "/api/v1/consent/changes/", updated_since=since)
    assert [(r["customer"], r["purpose"], r["granted"], r["counts"]) for r in rows] == [
        (str(customer.pk), "marketing_sms", False, False)
    ]


def test_the_requests_feed_gives_every_change_closed_ones_too(privacy_admin):
    customer = make_customer()
    before = timezone.now() - timedelta(seconds=1)
    opened = request_open(
        actor=privacy_admin,
        customer=customer,
        kind="access",
        verification="Signed in to their account",
    )
    rows = read_all(api(privacy_admin), "/api/v1/requests/", updated_since=before)
    assert [(r["id"], r["status"]) for r in rows] == [(str(opened.pk), "received")]
    assert rows[0]["updated_at"]


def test_updated_since_that_is_not_a_time_is_a_400(privacy_admin):
    response = api(privacy_admin).get(
        "/api/v1/customers/changes/", {"updated_since": "yesterday"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "updated_since"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_change_still_being_committed_holds_the_feed_back(privacy_admin):
    """A transaction that has written, open on another connection, keeps the feed
    short of its start: its change, stamped then and seen at its commit, is never
    passed by a reader."""
    import threading

    from django.db import connection, transaction

    from apps.core.sync import sync_horizon

    written, release = threading.Event(), threading.Event()
    stamps = []

    def slow_writer():
        try:
            with transaction.atomic():
                stamps.append(make_customer().updated_at)
                written.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    try:
        assert written.wait(timeout=30)
        assert sync_horizon() <= stamps[0]  # not passed while it may still commit
    finally:
        release.set()
        writer.join()
    assert sync_horizon() > stamps[0]
