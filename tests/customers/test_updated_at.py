"""`Customer.updated_at`, the customers' sync clock: every write of a customer row moves
it, the app's own (which stamp it themselves, on SQLite too) and, on PostgreSQL, any
other UPDATE (a trigger); `customers_changed_since` reads by it."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from apps.crypto.services import data_key_create
from apps.customers.models import Customer, CustomerStatus
from apps.customers.selectors import customers_changed_since
from apps.customers.services import (
    customer_close,
    customer_update,
    customer_user_link,
    customers_bulk_create,
    customers_clear_fields_bulk,
    customers_delete_bulk,
    customers_shred_bulk,
)
from apps.retention.services import customer_erase, purge_run
from tests.customers.factories import customer_data, make_customer
from tests.retention.factories import aged_customer

pytestmark = pytest.mark.django_db

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def _aged(customer: Customer) -> Customer:
    """`customer` last changed long ago, so that any write shows."""
    Customer.objects.filter(pk=customer.pk).update(updated_at=LONG_AGO)
    customer.refresh_from_db()
    assert customer.updated_at == LONG_AGO
    return customer


def _stored(customer: Customer) -> datetime:
    return Customer.objects.values_list("updated_at", flat=True).get(pk=customer.pk)


def _moved(customer: Customer, since: datetime) -> bool:
    return since <= _stored(customer) <= timezone.now()


def test_a_new_customer_is_stamped_as_stored():
    before = timezone.now()
    customer = make_customer()
    assert before <= customer.updated_at == _stored(customer)


def test_customers_created_in_bulk_are_stamped():
    before = timezone.now()
    customers_bulk_create(rows=[customer_data(), customer_data()])
    stamps = list(Customer.objects.values_list("updated_at", flat=True))
    assert len(stamps) == 2
    assert all(before <= at <= timezone.now() for at in stamps)


def test_a_change_moves_it_and_the_instance_matches_the_row(privacy_admin):
    customer = _aged(make_customer())
    before = timezone.now()
    changed = customer_update(
        actor=privacy_admin, customer=customer, data={"city": "Bandung"}
    )
    assert _moved(customer, before)
    # What the service returns is what a later read finds (an ETag made from either
    # agrees).
    assert changed.updated_at == _stored(customer)


def test_closing_moves_it(privacy_admin):
    customer = _aged(make_customer())
    before = timezone.now()
    closed = customer_close(actor=privacy_admin, customer=customer)
    assert _moved(customer, before)
    assert closed.updated_at == _stored(customer)


def test_erasing_moves_it(privacy_admin):
    customer = _aged(make_customer())
    before = timezone.now()
    erased = customer_erase(actor=privacy_admin, customer=customer)
    assert erased.is_erased
    assert _moved(customer, before)
    assert erased.updated_at == _stored(customer)


def test_linking_a_login_moves_it(customer_user):
    customer = _aged(make_customer())
    before = timezone.now()
    with transaction.atomic():
        customer_user_link(customer=customer, user=customer_user)
    assert _moved(customer, before)
    assert customer.updated_at == _stored(customer)


def test_a_save_of_no_fields_writes_nothing():
    customer = _aged(make_customer())
    customer.save(update_fields=[])
    assert _stored(customer) == LONG_AGO


@pytest.mark.parametrize("anonymize", [False, True])
def test_disposal_shredding_moves_it(anonymize):
    customer, untouched = _aged(make_customer()), _aged(make_customer())
    before = timezone.now()
    with transaction.atomic():
        customers_shred_bulk(customer_ids=[customer.pk], anonymize=anonymize)
    assert _moved(customer, before)
    assert _stored(untouched) == LONG_AGO


def test_disposal_clearing_fields_moves_it():
    customer = _aged(make_customer())
    before = timezone.now()
    customers_clear_fields_bulk(customer_ids=[customer.pk], fields=["notes"])
    assert _moved(customer, before)


def test_a_nightly_disposal_moves_it():
    customer = _aged(aged_customer(closed_days_ago=800))
    before = timezone.now()
    purge_run(actor=None, batch_size=10)
    customer.refresh_from_db()
    assert customer.is_erased
    assert _moved(customer, before)


def test_a_set_based_update_moves_it_unless_it_sets_it():
    customer = _aged(make_customer())
    before = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        Customer.objects.filter(pk=customer.pk).update(status=CustomerStatus.CLOSED)
    # The app stamps it (on SQLite nothing else would), not only the trigger.
    assert '"updated_at"' in queries[-1]["sql"]
    assert _moved(customer, before)
    Customer.objects.filter(pk=customer.pk).update(region="", updated_at=LONG_AGO)
    assert _stored(customer) == LONG_AGO


@pytest.mark.postgres
def test_any_sql_update_moves_it_on_postgres():
    customer = _aged(make_customer())
    before = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers_customer SET region = 'ID-JB' WHERE id = %s",
            [customer.pk],
        )
    assert _moved(customer, before)


@pytest.mark.postgres
def test_an_sql_update_that_changes_nothing_or_sets_the_time_keeps_it():
    customer = _aged(make_customer())
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers_customer SET region = region WHERE id = %s",
            [customer.pk],
        )
        assert _stored(customer) == LONG_AGO
        cursor.execute(
            "UPDATE customers_customer SET region = 'ID-JB', updated_at = %s "
            "WHERE id = %s",
            [LONG_AGO + timedelta(days=1), customer.pk],
        )
    assert _stored(customer) == LONG_AGO + timedelta(days=1)


@pytest.mark.postgres
def test_a_row_inserted_by_sql_without_it_gets_one():
    key = data_key_create()
    before = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO customers_customer (id, data_key_id, status, country, region, "
            "created_at, last_activity_at) "
            "VALUES (gen_random_uuid(), %s, 'active', 'ID', '', now(), now()) "
            "RETURNING id",
            [key.pk],
        )
        (new_id,) = cursor.fetchone()
    assert before <= Customer.objects.get(pk=new_id).updated_at <= timezone.now()


def test_changed_since_covers_every_customer_closed_and_erased_too(privacy_admin):
    active, closed, erased = (_aged(make_customer()) for _ in range(3))
    customer_close(actor=privacy_admin, customer=closed)
    customer_erase(actor=privacy_admin, customer=erased)
    assert set(customers_changed_since(since=None)) == {active, closed, erased}


def test_changed_since_is_at_or_after_the_time(privacy_admin):
    old, changed = _aged(make_customer()), _aged(make_customer())
    at = timezone.now()
    customer_update(actor=privacy_admin, customer=changed, data={"city": "Medan"})
    assert list(customers_changed_since(since=at)) == [changed]
    # The bound is included: a client asking again from the last row it read sees it.
    assert set(customers_changed_since(since=LONG_AGO)) == {old, changed}
    assert not customers_changed_since(since=timezone.now() + timedelta(seconds=1))


def test_a_deleted_customer_leaves_the_feed():
    gone, kept = make_customer(), make_customer()
    with transaction.atomic():
        customers_delete_bulk(customer_ids=[gone.pk])
    assert list(customers_changed_since(since=None)) == [kept]
