"""`DataRequest.updated_at`, the requests' sync clock: opening, every transition, an
extension, completion and the export move it (the app stamps it, on SQLite too; on
PostgreSQL a trigger stamps any other UPDATE); `requests_changed_since` reads by it."""

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.customers.services import customers_delete_bulk
from apps.requests.models import DataRequest, RequestEvent, RequestStatus
from apps.requests.selectors import requests_changed_since
from apps.requests.services import (
    erasure_execute,
    export_download,
    export_token,
    request_extend,
    request_open,
    request_process,
    request_transition,
)
from tests.portal.factories import make_account

pytestmark = pytest.mark.django_db

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _aged(request: DataRequest) -> DataRequest:
    """`request` last changed long ago, so that any write shows."""
    DataRequest.objects.filter(pk=request.pk).update(updated_at=LONG_AGO)
    request.refresh_from_db()
    assert request.updated_at == LONG_AGO
    return request


def _stored(request: DataRequest) -> datetime:
    return DataRequest.objects.values_list("updated_at", flat=True).get(pk=request.pk)


def _moved(request: DataRequest, since: datetime) -> bool:
    return since <= _stored(request) <= timezone.now()


def _opened(kind: str = "objection", email: str = "me@example.com") -> DataRequest:
    """A request opened by its customer, its task (if any) not run."""
    me = make_account(email=email, country="DE", region="DE-BE")
    return request_open(actor=me.user, customer=me, kind=kind)


def test_a_new_request_is_stamped_as_stored():
    before = timezone.now()
    request = _opened()
    assert before <= request.updated_at == _stored(request)


@pytest.mark.parametrize(
    "steps",
    [
        ["verifying"],
        ["verifying", "in_progress"],
        ["in_progress", "completed"],
        ["refused"],
    ],
)
def test_every_transition_moves_it(privacy_admin, steps):
    request = _opened()
    for status in steps:
        request = _aged(request)
        before = timezone.now()
        request = request_transition(
            actor=privacy_admin,
            request=request,
            status=status,
            note="Identity checked by phone",
        )
        assert _moved(request, before)
        assert request.updated_at == _stored(request)


def test_an_extension_moves_it(privacy_admin):
    request = _aged(_opened())
    before = timezone.now()
    request = request_extend(
        actor=privacy_admin, request=request, reason="Many linked requests"
    )
    assert _moved(request, before)
    assert request.updated_at == _stored(request)


def test_the_export_ready_and_downloaded_move_it():
    request = _aged(_opened(kind="access"))
    before = timezone.now()
    request_process(request_id=request.pk)
    assert _moved(request, before)
    assert DataRequest.objects.get(pk=request.pk).status == RequestStatus.COMPLETED

    request = _aged(request)
    before = timezone.now()
    customer = request.customer
    request, _ = export_download(token=export_token(request), customer=customer)
    assert _moved(request, before)
    assert request.updated_at == _stored(request)


def test_an_erasure_done_moves_it():
    request = _aged(_opened(kind="erasure"))
    before = timezone.now()
    request = erasure_execute(request=request)
    assert request.status == RequestStatus.COMPLETED
    assert _moved(request, before)
    assert request.updated_at == _stored(request)


def test_a_set_based_update_moves_it_unless_it_sets_it():
    request = _aged(_opened())
    before = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        DataRequest.objects.filter(pk=request.pk).update(outcome="Noted.")
    assert '"updated_at"' in queries[-1]["sql"]  # the app's stamp, on SQLite too
    assert _moved(request, before)
    DataRequest.objects.filter(pk=request.pk).update(outcome="", updated_at=LONG_AGO)
    assert _stored(request) == LONG_AGO


@pytest.mark.postgres
def test_any_sql_update_moves_it_on_postgres():
    request = _aged(_opened())
    before = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE dsr_datarequest SET outcome = 'Noted.' WHERE id = %s",
            [request.pk],
        )
    assert _moved(request, before)


@pytest.mark.postgres
def test_the_customer_deleted_by_disposal_moves_it_on_postgres():
    """Disposal deletes by SQL and sets the request's customer and key to NULL."""
    request = _aged(_opened())
    before = timezone.now()
    with transaction.atomic():
        customers_delete_bulk(customer_ids=[request.customer_id])
    request.refresh_from_db()
    assert request.customer_id is None
    assert _moved(request, before)


def test_the_migration_fills_it_with_the_rows_latest_time(privacy_admin):
    fill = importlib.import_module(
        "apps.requests.migrations.0004_datarequest_updated_at"
    ).backfill
    received = datetime(2021, 1, 1, tzinfo=UTC)
    untouched = _opened(email="a@example.com")
    extended = _opened(email="b@example.com")
    completed = _opened(email="c@example.com")
    request_extend(actor=privacy_admin, request=extended, reason="Many requests")
    request_transition(
        actor=privacy_admin,
        request=completed,
        status="refused",
        note="No processing on that basis",
    )
    DataRequest.objects.update(received_at=received)
    RequestEvent.objects.update(at=received)
    RequestEvent.objects.filter(request=extended, note__startswith="extended").update(
        at=received + timedelta(days=2)
    )
    DataRequest.objects.filter(pk=completed.pk).update(
        completed_at=received + timedelta(days=4)
    )
    fill(apps, None)
    assert [_stored(r) for r in (untouched, extended, completed)] == [
        received,
        received + timedelta(days=2),
        received + timedelta(days=4),
    ]


# The feed's selector ----------------------------------------------------------------


def test_changed_since_is_at_or_after_the_time_closed_ones_too(privacy_admin):
    old = _aged(_opened(email="a@example.com"))
    refused = _aged(_opened(email="b@example.com"))
    at = timezone.now()
    request_transition(
        actor=privacy_admin,
        request=refused,
        status="refused",
        note="No processing on that basis",
    )
    assert list(requests_changed_since(since=at)) == [refused]
    assert set(requests_changed_since(since=LONG_AGO)) == {old, refused}
    assert set(requests_changed_since(since=None)) == {old, refused}
    assert not requests_changed_since(since=timezone.now() + timedelta(seconds=1))
