"""Opening a request: the customer's row is locked first, before the audit chain
(apps/core/db.py), so an objection's changes (restriction, consent state) never lock
a row after it; an open objection to one thing does not block one to another. Moving
a request on (a status change, the extension) locks the customer's row, if at all,
before the audit chain too."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.audit.services import AUDIT_CHAIN_LOCK
from apps.core.errors import Conflict
from apps.customers.models import Customer
from apps.requests.models import DataRequest, RequestKind, RequestStatus
from apps.requests.services import request_handle, request_open, request_transition
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


_CUSTOMER_TABLE = f'"{Customer._meta.db_table}"'


def _locks_a_customer_row(sql: str) -> bool:
    return (
        f"FROM {_CUSTOMER_TABLE}" in sql
        and ("FOR NO KEY UPDATE" in sql or "FOR UPDATE" in sql)
    ) or sql.startswith(f"UPDATE {_CUSTOMER_TABLE}")


def _no_customer_lock_after_the_audit_chain(queries) -> None:
    """The audit chain's lock is held to the commit: a customer's row locked after
    it waits with it held (apps/core/db.py: the customer's row first)."""
    audit_lock = _first(queries, f"pg_advisory_xact_lock({AUDIT_CHAIN_LOCK})")
    later = [
        query["sql"]
        for query in list(queries)[audit_lock + 1 :]
        if _locks_a_customer_row(query["sql"])
    ]
    assert later == []


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("kind", "objection_to"),
    [(kind, "") for kind in RequestKind.values if kind != "objection"]
    + [("objection", "other"), ("objection", "marketing"), ("objection", "")],
)
def test_opening_locks_no_customer_row_after_the_audit_chain(kind, objection_to):
    me = make_account(email="me@example.com")
    extra = {"field": "city", "new_value": "Bandung"} if kind == "rectification" else {}
    with CaptureQueriesContext(connection) as queries:
        request_open(
            actor=me.user, customer=me, kind=kind, objection_to=objection_to, **extra
        )
    _no_customer_lock_after_the_audit_chain(queries)


def _opened(kind: str, **extra):
    # Germany: the GDPR allows an extension.
    me = make_account(email="me@example.com", city="Jakarta", country="DE", region="")
    return request_open(actor=me.user, customer=me, kind=kind, **extra)


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("kind", "extra", "steps"),
    [
        ("restriction", {}, ["in_progress"]),
        ("restriction", {}, ["completed"]),
        ("restriction", {}, ["in_progress", "completed"]),
        ("restriction", {}, ["in_progress", "refused"]),
        ("objection", {"objection_to": "other"}, ["completed"]),
        ("objection", {"objection_to": "other"}, ["refused"]),
        ("rectification", {"field": "city", "new_value": "Bandung"}, ["completed"]),
    ],
)
def test_a_status_change_locks_no_customer_row_after_the_audit_chain(
    privacy_admin, kind, extra, steps
):
    request = _opened(kind, **extra)
    for status in steps:
        with CaptureQueriesContext(connection) as queries:
            request = request_transition(
                actor=privacy_admin,
                request=request,
                status=status,
                note="Checked with the team",
            )
        _no_customer_lock_after_the_audit_chain(queries)
    assert request.status == steps[-1]


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("kind", "extra"),
    [("restriction", {}), ("objection", {"objection_to": "other"})],
)
def test_a_status_change_with_the_extension_locks_no_customer_row_after_the_audit(
    privacy_admin, kind, extra
):
    request = _opened(kind, **extra)
    due = request.due_at
    with CaptureQueriesContext(connection) as queries:
        request = request_handle(
            actor=privacy_admin,
            request=request,
            status="in_progress",
            note="Many linked requests",
            extend=True,
        )
    _no_customer_lock_after_the_audit_chain(queries)
    assert (request.status, request.extended) == ("in_progress", True)
    assert request.due_at > due


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
    _no_customer_lock_after_the_audit_chain(queries)
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
