"""The customers a retention policy covers, and when their clocks started: what the
customers app offers disposal (apps.retention builds its due queries on them)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.customers.models import Customer, CustomerStatus
from apps.customers.selectors import (
    customer_clock_filter,
    customers_closed,
    customers_holding_category,
    customers_not_erased,
)
from apps.customers.services import customer_shred
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


def _closed(days_ago: int) -> Customer:
    customer = make_customer()
    Customer.objects.filter(pk=customer.pk).update(
        status=CustomerStatus.CLOSED,
        closed_at=timezone.now() - timedelta(days=days_ago),
    )
    return customer


def test_erased_customers_are_covered_by_nothing():
    kept, erased = _closed(10), _closed(10)
    customer_shred(actor=None, customer=erased)
    assert set(customers_not_erased()) == {kept}
    assert set(customers_closed()) == {kept}
    assert set(customers_holding_category(category="contact")) == {kept}


def test_closed_accounts_are_those_closed_with_a_date():
    closed = _closed(10)
    make_customer()  # active
    undated = make_customer()
    Customer.objects.filter(pk=undated.pk).update(status=CustomerStatus.CLOSED)
    assert set(customers_closed()) == {closed}


def test_a_category_covers_the_customers_still_holding_one_of_its_fields():
    noted, silent = make_customer(), make_customer(notes="")
    Customer.objects.filter(pk=silent.pk).update(notes=None)
    assert set(customers_holding_category(category="free_text")) == {noted}


@pytest.mark.parametrize(
    ("clock", "field"),
    [
        ("created", "created_at"),
        ("last_activity", "last_activity_at"),
        ("closed", "closed_at"),
    ],
)
def test_a_clock_starts_at_its_own_time_inclusive(clock, field):
    customer = make_customer()
    at = timezone.now() - timedelta(days=30)
    Customer.objects.filter(pk=customer.pk).update(**{field: at})
    started = Customer.objects.filter(customer_clock_filter(clock=clock, before=at))
    assert list(started) == [customer]
    early = at - timedelta(seconds=1)
    assert not Customer.objects.filter(customer_clock_filter(clock=clock, before=early))


def test_an_unknown_clock_is_refused():
    with pytest.raises(KeyError):
        customer_clock_filter(clock="consent_withdrawn", before=timezone.now())
