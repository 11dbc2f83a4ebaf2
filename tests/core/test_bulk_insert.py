"""`bulk_insert`: one statement for any number of rows, each typed as its field."""

import uuid

import pytest
from django.db import DataError, IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.access.models import AccessLogEntry
from apps.core.db import bulk_insert
from tests.accounts.factories import UserFactory
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


def test_rows_and_constants_land_typed_in_one_statement():
    staff = UserFactory(role="support_agent")
    customers = [make_customer(), make_customer()]
    now = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        count = bulk_insert(
            AccessLogEntry,
            columns=["customer", "fields", "purpose", "interaction_id", "reveal_id"],
            rows=[
                (customers[0], {"email": "masked"}, "support", None, None),
                (customers[1].pk, {"phone": "shown"}, "support", None, None),
            ],
            constants={"staff": staff, "staff_role": staff.role, "created_at": now},
        )
    assert count == 2
    assert len(queries) == 1
    rows = AccessLogEntry.objects.filter(staff=staff).order_by("id")
    assert [(r.customer_id, r.fields, r.created_at) for r in rows] == [
        (customers[0].pk, {"email": "masked"}, now),
        (customers[1].pk, {"phone": "shown"}, now),
    ]


def test_nothing_to_insert_runs_no_statement():
    with CaptureQueriesContext(connection) as queries:
        assert bulk_insert(AccessLogEntry, columns=["customer"], rows=[]) == 0
    assert not queries


def _insert_with_a_dangling_customer(staff, customer):
    with transaction.atomic():
        bulk_insert(
            AccessLogEntry,
            columns=["customer", "fields", "purpose"],
            rows=[(customer.pk, {}, "support"), (uuid.uuid4(), {}, "support")],
            constants={
                "staff": staff,
                "staff_role": staff.role,
                "created_at": timezone.now(),
            },
        )
        connection.check_constraints()  # the foreign keys are deferred to commit


def test_a_bad_row_inserts_nothing():
    staff = UserFactory(role="support_agent")
    customer = make_customer()
    with pytest.raises(IntegrityError):
        _insert_with_a_dangling_customer(staff, customer)
    assert not AccessLogEntry.objects.filter(staff=staff).exists()


def test_a_value_too_long_for_its_column_is_refused_not_cut():
    staff = UserFactory(role="support_agent")
    customer = make_customer()
    longest = AccessLogEntry._meta.get_field("staff_role").max_length
    with pytest.raises(DataError), transaction.atomic():
        bulk_insert(
            AccessLogEntry,
            columns=["customer", "fields", "purpose"],
            rows=[(customer.pk, {}, "support")],
            constants={
                "staff": staff,
                "staff_role": "r" * (longest + 1),
                "created_at": timezone.now(),
            },
        )
    assert not AccessLogEntry.objects.filter(staff=staff).exists()
