"""Opening a request: the customer's row is locked first, before the audit chain
(apps/core/db.py), so an objection's changes (restriction, consent state) never lock
a row after it; an open objection to one thing does not block one to another."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.core.errors import Conflict
from apps.customers.models import Customer
from apps.requests.models import DataRequest, RequestStatus
from apps.requests.services import request_open
from tests.concurrency import at_once
from tests.consent.factories import reseed_purposes
from tests.portal.factories import make_account

pytestmark = pytest.mark.django_db


def _first(queries, *needles: str) -> int:
    return next(
        n
        for n, query in enumerate(queries)
        if all(needle in query["sql"] for needle in needles)
    )


@pytest.mark.postgres
@pytest.mark.parametrize("objection_to", ["other", "marketing", ""])
def test_the_customer_row_is_locked_before_the_request_and_the_audit_chain(
    objection_to,
):
    me = make_account(email="me@example.com")
    kind = "objection" if objection_to else "restriction"
    with CaptureQueriesContext(connection) as queries:
        request_open(actor=me.user, customer=me, kind=kind, objection_to=objection_to)
    customer_lock = _first(queries, f'"{Customer._meta.db_table}"', "FOR NO KEY UPDATE")
    request_insert = _first(queries, f'INSERT INTO "{DataRequest._meta.db_table}"')
    audit_lock = _first(queries, "pg_advisory_xact_lock")
    assert customer_lock < request_insert < audit_lock
    # The request's own event is the last one of the transaction.
    from apps.audit.models import AuditEvent

    assert AuditEvent.objects.order_by("-pk").first().action == "request.opened"


def test_a_marketing_objection_is_not_blocked_by_an_open_review():
    me = make_account(email="me@example.com")
    review = request_open(
        actor=me.user, customer=me, kind="objection", objection_to="other"
    )
    assert review.status == RequestStatus.IN_PROGRESS
    marketing = request_open(
        actor=me.user, customer=me, kind="objection", objection_to="marketing"
    )
    assert marketing.status == RequestStatus.COMPLETED
    # Again: a marketing objection is done at once, so never "already open".
    request_open(actor=me.user, customer=me, kind="objection", objection_to="marketing")
    # A second review of another use while one is open is still a conflict.
    with pytest.raises(Conflict):
        request_open(actor=me.user, customer=me, kind="objection", objection_to="other")
    assert DataRequest.objects.filter(objection_to="other").count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_opens_of_one_kind_at_once_make_one_request():
    reseed_purposes()  # a transactional test may start after another one's flush
    me = make_account(email="me@example.com")
    results = at_once(
        [
            lambda: request_open(
                actor=me.user, customer=me, kind="objection", objection_to="other"
            )
            for _ in range(2)
        ]
    )
    assert sorted(type(r).__name__ for r in results) == ["Conflict", "DataRequest"]
    assert DataRequest.objects.count() == 1
