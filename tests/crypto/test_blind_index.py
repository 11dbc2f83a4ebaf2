import pytest
from django.db import connection

from apps.crypto.blind import blind_index, normalize_email, normalize_phone
from apps.customers.models import Customer
from apps.customers.selectors import customer_list
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


def test_email_search_normalises_the_plain_value():
    customer = make_customer(email="Jane.Doe@Example.com")
    assert list(Customer.objects.filter(email_index="  jane.doe@EXAMPLE.com ")) == [
        customer
    ]
    assert list(customer_list(email="JANE.DOE@example.com")) == [customer]
    assert list(customer_list(email="other@example.com")) == []


def test_phone_search_matches_any_writing_of_the_number():
    customer = make_customer(phone="0812-3456-7890", country="ID")
    assert customer.phone == "+6281234567890"
    for written in ("+62 812 3456 7890", "+6281234567890", "0812 3456 7890"):
        assert list(customer_list(phone=written)) == [customer]


def test_invalid_search_values_match_no_one():
    make_customer()
    assert list(customer_list(email="not-an-email")) == []
    assert list(customer_list(phone="12")) == []


def test_index_is_a_keyed_hash_stored_beside_the_ciphertext():
    customer = make_customer(email="jane@example.com")
    expected = blind_index("customers.customer.email", "jane@example.com")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT email_index FROM customers_customer WHERE id = %s",
            [customer.pk.hex],
        )
        assert cursor.fetchone()[0] == expected
    assert blind_index("customers.customer.phone", "jane@example.com") != expected


def test_index_depends_on_the_key(settings):
    before = blind_index("s", "v")
    settings.AMANAH_BLIND_INDEX_KEY = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    assert blind_index("s", "v") != before


def test_the_key_and_plaintext_never_reach_sql(django_assert_max_num_queries):
    make_customer(email="sqlwatch@example.com")
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        list(customer_list(email="sqlwatch@example.com"))
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    assert "sqlwatch" not in sql
    assert "hmac" not in sql.lower()


def test_changing_the_email_moves_the_index():
    customer = make_customer(email="old@example.com")
    customer.email = "new@example.com"
    customer.save()
    assert list(customer_list(email="old@example.com")) == []
    assert list(customer_list(email="new@example.com")) == [customer]


def test_normalisers():
    assert normalize_email("  A@B.Org ") == "a@b.org"
    assert normalize_phone("+49 30 901820") == "+4930901820"
    with pytest.raises(ValueError, match="phone"):
        normalize_phone("hello")
