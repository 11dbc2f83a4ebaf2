"""The customer sets the customers app offers the apps above it: who an incident's
selection covers, whom an audience leaves out, which data categories people hold
(incidents, consent, inventory build their queries on these)."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from apps.customers.models import Customer
from apps.customers.selectors import (
    customer_categories_held,
    customer_ids_erased,
    customer_ids_erased_sql,
    customers_created_between,
    customers_in_places,
)
from apps.customers.services import customer_lock_erased_at
from apps.retention.services import customer_erase
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


def test_places_match_a_country_or_a_region():
    jakarta = make_customer(country="ID", region="ID-JK")
    bali = make_customer(country="ID", region="ID-BA")
    berlin = make_customer(country="DE", region="DE-BE")
    texas = make_customer(country="US", region="US-TX")

    in_places = customers_in_places(countries=["DE"], regions=["ID-BA"])
    assert set(in_places) == {bali, berlin}
    assert set(customers_in_places(countries=["ID"], regions=[])) == {jakarta, bali}
    assert set(customers_in_places(countries=[], regions=["US-TX"])) == {texas}
    assert not customers_in_places(countries=[], regions=[]).exists()


def test_places_and_windows_keep_erased_customers():
    erased = make_customer(country="DE", region="")
    customer_erase(actor=None, customer=erased)

    assert list(customers_in_places(countries=["DE"], regions=[])) == [erased]
    now = timezone.now()
    window = customers_created_between(start=now - timedelta(days=1), end=now)
    assert list(window) == [erased]


def test_the_window_includes_both_ends():
    now = timezone.now()
    inside = [make_customer(), make_customer(), make_customer()]
    before = make_customer()
    for customer, days in zip([*inside, before], [2, 1, 0, 3], strict=True):
        created = now - timedelta(days=days)
        Customer.objects.filter(pk=customer.pk).update(created_at=created)

    window = customers_created_between(start=now - timedelta(days=2), end=now)
    assert set(window) == set(inside)


def test_erased_ids_are_a_subquery_of_the_erased_only():
    kept, erased = make_customer(), make_customer()
    customer_erase(actor=None, customer=erased)

    assert [row["pk"] for row in customer_ids_erased()] == [erased.pk]
    assert set(Customer.objects.exclude(pk__in=customer_ids_erased())) == {kept}


def test_the_erased_ids_sql_selects_what_the_subquery_does():
    make_customer()
    erased = make_customer()
    customer_erase(actor=None, customer=erased)

    sql, params = customer_ids_erased_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [row[0] for row in cursor.fetchall()]
    field = Customer._meta.pk
    assert [field.to_python(value) for value in ids] == [erased.pk]


def test_categories_held_names_the_categories_with_a_value():
    full = make_customer()
    sparse = make_customer(
        phone="", address_line="", city="", postal_code="", notes="", card_last4=""
    )
    Customer.objects.filter(pk=sparse.pk).update(
        payment_token=None, date_of_birth=None, national_id=None
    )

    held = customer_categories_held(customer_ids=[full.pk, sparse.pk])

    assert held[full.pk] == {
        "identity",
        "contact",
        "address",
        "financial",
        "sensitive",
        "free_text",
    }
    assert held[sparse.pk] == {"identity", "contact"}  # the email is contact


def test_categories_held_leaves_out_the_erased_and_the_gone(
    django_assert_num_queries,
):
    kept, erased = make_customer(), make_customer()
    customer_erase(actor=None, customer=erased)
    gone = make_customer().pk
    Customer.objects.filter(pk=gone).delete()

    with django_assert_num_queries(1):
        held = customer_categories_held(customer_ids=[kept.pk, erased.pk, gone])

    assert set(held) == {kept.pk}


def test_the_erasure_lock_returns_when_the_customer_was_erased():
    kept, erased = make_customer(), make_customer()
    customer_erase(actor=None, customer=erased)

    with transaction.atomic():
        assert customer_lock_erased_at(customer_id=kept.pk) is None
        erased_at = customer_lock_erased_at(customer_id=erased.pk)
    erased.refresh_from_db()
    assert erased_at == erased.erased_at is not None


def test_the_erasure_lock_refuses_a_customer_who_is_gone():
    gone = make_customer().pk
    Customer.objects.filter(pk=gone).delete()

    with transaction.atomic(), pytest.raises(Customer.DoesNotExist):
        customer_lock_erased_at(customer_id=gone)
