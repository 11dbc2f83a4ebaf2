"""Each event is written to the outbox by the real service, in its transaction, with
ids, purposes and field names only."""

import json

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.audit import services as audit_services
from apps.consent.models import ConsentSource
from apps.consent.services import (
    consent_apply_gpc,
    consent_object_to_marketing,
    consent_record,
    unsubscribe,
    unsubscribe_token,
)
from apps.customers.models import RestrictionSource
from apps.customers.services import (
    customer_restrict,
    customer_restriction_lift,
    customer_update,
    customers_delete_bulk,
    customers_shred_bulk,
)
from apps.requests import services as request_services
from apps.requests.services import request_open, request_process, request_transition
from apps.retention.services import customer_erase
from apps.webhooks import services as webhook_services
from apps.webhooks.models import Delivery, Event
from apps.webhooks.services import _ANY_ENDPOINT, event_emit, events_emit_bulk
from tests.customers.factories import CANARY, make_canary, make_customer
from tests.portal.factories import make_account
from tests.webhooks.factories import make_endpoint

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def endpoint(privacy_admin, receiver):
    endpoint, _ = make_endpoint(privacy_admin, receiver.url)
    return endpoint


def events_of(customer, type_=None):
    rows = Event.objects.filter(customer_id=customer.pk).order_by("created_at")
    if type_:
        rows = rows.filter(type=type_)
    return list(rows)


def test_a_rolled_back_change_leaves_no_event(endpoint):
    customer = make_customer()
    with pytest.raises(RuntimeError), transaction.atomic():  # noqa: PT012
        consent_record(
            actor=None,
            customer=customer,
            purpose_code="marketing_email",
            granted=True,
            source=ConsentSource.API,
        )
        assert Event.objects.filter(customer_id=customer.pk).exists()
        raise RuntimeError
    assert not Event.objects.exists()
    assert not Delivery.objects.exists()


def test_a_consent_change_is_an_event_with_one_delivery_per_endpoint(
    endpoint, privacy_admin, receiver
):
    other, _ = make_endpoint(
        privacy_admin, f"{receiver.url}other", events=["consent.changed"]
    )
    make_endpoint(privacy_admin, f"{receiver.url}third", events=["customer.erased"])
    customer = make_customer()
    consent_record(
        actor=None,
        customer=customer,
        purpose_code="marketing_email",
        granted=True,
        source=ConsentSource.API,
    )
    [event] = events_of(customer)
    assert event.id.startswith("msg_")
    assert event.type == "consent.changed"
    assert event.payload["type"] == "consent.changed"
    assert event.payload["data"] == {
        "customer_id": str(customer.pk),
        "purpose": "marketing_email",
        "granted": True,
        "source": "api",
        "notice_version": event.payload["data"]["notice_version"],
        "at": event.payload["data"]["at"],
    }
    assert set(Delivery.objects.values_list("endpoint_id", flat=True)) == {
        endpoint.pk,
        other.pk,
    }


def test_unsubscribes_gpc_and_objections_are_consent_changes(endpoint):
    customer = make_account(email="u@example.com")
    for code in ("marketing_email", "partner_sharing"):
        consent_record(
            actor=None,
            customer=customer,
            purpose_code=code,
            granted=True,
            source=ConsentSource.API,
        )
    unsubscribe(
        token=unsubscribe_token(customer_id=customer.pk, purpose_code="marketing_email")
    )
    assert consent_apply_gpc(customer=customer)
    consent_record(
        actor=None,
        customer=customer,
        purpose_code="marketing_email",
        granted=True,
        source=ConsentSource.API,
    )
    consent_object_to_marketing(actor=None, customer=customer)
    sources = [
        (
            e.payload["data"]["purpose"],
            e.payload["data"]["granted"],
            e.payload["data"]["source"],
        )
        for e in events_of(customer, "consent.changed")
    ]
    assert ("marketing_email", False, ConsentSource.UNSUBSCRIBE_LINK) in sources
    assert ("partner_sharing", False, ConsentSource.GPC) in sources
    assert ("marketing_email", False, ConsentSource.OBJECTION) in sources


def test_a_correction_names_the_changed_fields_never_values(endpoint):
    customer = make_canary()
    customer_update(
        actor=None,
        customer=customer,
        data={"city": "Bandung", "full_name": CANARY["full_name"]},
    )
    [event] = events_of(customer, "customer.rectified")
    assert event.payload["data"] == {
        "customer_id": str(customer.pk),
        "fields": ["city"],
    }
    # Nothing changed: no event.
    customer_update(actor=None, customer=customer, data={"city": "Bandung"})
    assert len(events_of(customer, "customer.rectified")) == 1


def test_an_erasure_is_an_event(endpoint):
    customer = make_customer()
    customer_erase(actor=None, customer=customer)
    [event] = events_of(customer, "customer.erased")
    assert event.payload["data"] == {
        "customer_id": str(customer.pk),
        "cause": "request",
    }


def test_a_bulk_erasure_is_one_event_per_customer_in_one_insert(
    endpoint, django_assert_num_queries
):
    customers = [make_customer() for _ in range(5)]
    more = [make_customer() for _ in range(20)]
    with CaptureQueriesContext(connection) as five, transaction.atomic():
        customers_shred_bulk(customer_ids=[c.pk for c in customers])
    with CaptureQueriesContext(connection) as twenty, transaction.atomic():
        customers_shred_bulk(customer_ids=[c.pk for c in more])
    assert len(twenty) == len(five)  # as many statements for 20 as for 5
    outbox = [q["sql"] for q in twenty if '"webhooks_' in q["sql"]]
    assert [q.split(" ")[0] for q in outbox] == ["SELECT", "INSERT", "INSERT"]
    erased = Event.objects.filter(type="customer.erased")
    assert sorted(str(e.customer_id) for e in erased) == sorted(
        str(c.pk) for c in customers + more
    )
    assert Delivery.objects.filter(event__in=erased).count() == 25


def test_a_disposal_by_deletion_is_one_erasure_event_per_customer(endpoint):
    customers = [make_customer() for _ in range(3)]
    ids = [c.pk for c in customers]
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        customers_delete_bulk(customer_ids=ids)
    erased = Event.objects.filter(type="customer.erased")
    assert sorted(e.customer_id for e in erased) == sorted(ids)
    assert {e.payload["data"]["cause"] for e in erased} == {"deleted"}
    inserts = [q for q in queries if q["sql"].startswith('INSERT INTO "webhooks_')]
    assert len(inserts) == 2  # the events, then their deliveries


def test_restriction_and_its_lift_are_events(endpoint, privacy_admin):
    customer = make_customer()
    restriction = customer_restrict(
        actor=privacy_admin,
        customer=customer,
        purpose="legal claims: a pending dispute",
        source=RestrictionSource.REQUEST,
    )
    customer_restriction_lift(
        actor=privacy_admin,
        restriction=restriction,
        reason="The dispute was settled in court",
        customer_told=True,
    )
    [placed] = events_of(customer, "customer.restricted")
    assert placed.payload["data"]["restriction_id"] == restriction.pk
    assert placed.payload["data"]["source"] == RestrictionSource.REQUEST
    [lifted] = events_of(customer, "customer.restriction_lifted")
    assert lifted.payload["data"] == {
        "customer_id": str(customer.pk),
        "restriction_id": restriction.pk,
    }


def test_a_completed_request_is_an_event(endpoint, django_capture_on_commit_callbacks):
    customer = make_account(email="req@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        request = request_open(actor=customer.user, customer=customer, kind="erasure")
    [event] = events_of(customer, "request.completed")
    assert event.payload["data"] == {
        "customer_id": str(customer.pk),
        "request_id": str(request.pk),
        "kind": "erasure",
    }
    assert events_of(customer, "customer.erased")


def test_no_payload_holds_a_personal_value(endpoint, privacy_admin, receiver):
    customer = make_canary()
    consent_record(
        actor=None,
        customer=customer,
        purpose_code="marketing_email",
        granted=True,
        source=ConsentSource.API,
    )
    customer_update(actor=None, customer=customer, data={"city": "Bandung"})
    customer_erase(actor=None, customer=customer)
    text = json.dumps([e.payload for e in Event.objects.all()])
    assert text.count(str(customer.pk)) == 3
    for value in CANARY.values():
        assert value not in text


def test_without_an_endpoint_nothing_is_written_nor_asked(
    django_assert_num_queries,
):
    customer = make_customer()
    cache.delete(_ANY_ENDPOINT)
    with django_assert_num_queries(1):  # learns that none exists
        event_emit(type="consent.changed", customer_id=customer.pk, data={})
    with django_assert_num_queries(0):
        assert event_emit(type="consent.changed", customer_id=customer.pk, data={}) == 0
    assert not Event.objects.exists()


def test_without_an_endpoint_a_bulk_emission_does_not_even_build_its_events():
    # An import passes its payloads as a generator: building 100,000 of them for no
    # endpoint was measurable (bench/import.py).
    customer = make_customer()
    built = []

    def items():
        built.append(1)
        yield customer.pk, {}

    cache.delete(_ANY_ENDPOINT)
    assert events_emit_bulk(type="consent.changed", items=items()) == 0
    assert not built


def test_an_endpoint_for_other_types_gets_none(privacy_admin, receiver):
    make_endpoint(privacy_admin, receiver.url, events=["customer.erased"])
    customer = make_customer()
    consent_record(
        actor=None,
        customer=customer,
        purpose_code="marketing_email",
        granted=True,
        source=ConsentSource.API,
    )
    assert not Event.objects.exists()


def test_a_cache_that_is_down_never_fails_the_change(endpoint, monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(cache, "get", down)
    customer = make_customer()
    consent_record(
        actor=None,
        customer=customer,
        purpose_code="marketing_email",
        granted=True,
        source=ConsentSource.API,
    )
    assert events_of(customer, "consent.changed")


@pytest.fixture
def calls(monkeypatch):
    """The order of emissions, audit records and (requests') customer locks."""
    seen: list[tuple[str, str]] = []
    emit_real = webhook_services.events_emit_bulk
    record_real = audit_services.record
    lock_real = request_services.customer_lock_erased_at

    def emit(**kwargs):
        seen.append(("emit", kwargs["type"]))
        return emit_real(**kwargs)

    def record(**kwargs):
        seen.append(("audit", kwargs.get("action", "")))
        return record_real(**kwargs)

    def lock(**kwargs):
        seen.append(("lock", "customer"))
        return lock_real(**kwargs)

    monkeypatch.setattr(webhook_services, "events_emit_bulk", emit)
    monkeypatch.setattr(audit_services, "record", record)
    monkeypatch.setattr(request_services, "customer_lock_erased_at", lock)
    return seen


def test_every_emitter_emits_before_its_audit_record(endpoint, privacy_admin, calls):
    """The audit chain is the last lock (apps/core/db.py): the outbox is written
    before it, under the customer's row the service holds."""
    customer = make_canary()
    calls.clear()
    consent_record(
        actor=None,
        customer=customer,
        purpose_code="marketing_email",
        granted=True,
        source=ConsentSource.API,
    )
    assert calls == [("emit", "consent.changed"), ("audit", "consent.granted")]
    calls.clear()
    customer_update(actor=None, customer=customer, data={"city": "Bandung"})
    assert calls == [("emit", "customer.rectified"), ("audit", "customer.updated")]
    calls.clear()
    restriction = customer_restrict(
        actor=privacy_admin,
        customer=customer,
        purpose="legal claims: a pending dispute",
        source=RestrictionSource.REQUEST,
    )
    assert calls == [("emit", "customer.restricted"), ("audit", "customer.restricted")]
    calls.clear()
    customer_restriction_lift(
        actor=privacy_admin,
        restriction=restriction,
        reason="The dispute was settled in court",
        customer_told=True,
    )
    assert calls == [
        ("emit", "customer.restriction_lifted"),
        ("audit", "customer.restriction_lifted"),
    ]
    calls.clear()
    customer_erase(actor=None, customer=customer)
    assert calls == [("emit", "customer.erased"), ("audit", "customer.erased")]


def test_a_completed_request_emits_under_the_customers_lock_before_its_audit(
    endpoint, calls, django_capture_on_commit_callbacks
):
    customer = make_account(email="export@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        request = request_open(actor=customer.user, customer=customer, kind="access")
    emitted = calls.index(("emit", "request.completed"))
    assert calls[emitted + 1] == ("audit", "request.export_ready")
    # The customer's row taken in the export's transaction (after the opening's
    # audit record), before the emission.
    opened = calls.index(("audit", "request.opened"))
    assert ("lock", "customer") in calls[opened + 1 : emitted]
    [event] = events_of(customer, "request.completed")
    assert event.request_id == request.pk


def test_events_a_request_causes_name_it(endpoint, privacy_admin):
    customer = make_account(email="linked@example.com")
    request = request_open(
        actor=customer.user,
        customer=customer,
        kind="rectification",
        field="city",
        new_value="Bandung",
    )
    request_transition(actor=privacy_admin, request=request, status="completed")
    customer_update(actor=privacy_admin, customer=customer, data={"city": "Medan"})
    by_request, by_staff = events_of(customer, "customer.rectified")
    assert by_request.request_id == request.pk
    assert by_staff.request_id is None
    [completed] = events_of(customer, "request.completed")
    assert completed.request_id == request.pk
    erasure = request_open(actor=customer.user, customer=customer, kind="erasure")
    request_process(request_id=erasure.pk)
    [erased] = events_of(customer, "customer.erased")
    assert erased.request_id == erasure.pk


def test_the_erasure_causes_are_the_documented_ones(
    endpoint, privacy_admin, django_capture_on_commit_callbacks
):
    """README's event table lists each `cause` of `customer.erased` (W6)."""
    staff, erased, anonymized, deleted = (make_customer() for _ in range(4))
    customer_erase(actor=privacy_admin, customer=staff)
    asked = make_account(email="asked@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        request_open(actor=asked.user, customer=asked, kind="erasure")
    with transaction.atomic():
        customers_shred_bulk(customer_ids=[erased.pk])
        customers_shred_bulk(customer_ids=[anonymized.pk], anonymize=True)
        customers_delete_bulk(customer_ids=[deleted.pk])
    causes = {
        event.customer_id: event.payload["data"]["cause"]
        for event in Event.objects.filter(type="customer.erased")
    }
    assert causes == {
        staff.pk: "request",
        asked.pk: "erasure_request",
        erased.pk: "erased",
        anonymized.pk: "anonymized",
        deleted.pk: "deleted",
    }
