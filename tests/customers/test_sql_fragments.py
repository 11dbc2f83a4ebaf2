"""The fragments customers and crypto offer a statement written by hand in another app
(access's agent list): composed, they read customers with their data keys."""

import pytest
from django.db import connection

from apps.core.db import model_from_row
from apps.crypto.keys import data_key_sql
from apps.crypto.models import DataKey
from apps.customers.models import Customer
from apps.customers.selectors import customer_list, customer_sql
from apps.customers.services import customer_shred
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


def test_the_fragments_read_customers_with_their_keys_newest_first(privacy_admin):
    for _ in range(3):
        make_customer()
    shredded = customer_shred(actor=privacy_admin, customer=make_customer())
    c, k = customer_sql("c"), data_key_sql("k")

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {c.columns}, {k.id}, {k.columns} FROM {c.source} "  # noqa: S608
            f"JOIN {k.source} ON {k.id} = {c.data_key_id} ORDER BY {c.newest_first}"
        )
        rows = cursor.fetchall()

    split = len(Customer._meta.concrete_fields)
    customers = [model_from_row(Customer, row[:split]) for row in rows]
    assert customers == list(customer_list())
    assert [c.data_key_id for c in customers] == [row[split] for row in rows]
    keys = DataKey.objects.in_bulk([row[split] for row in rows])
    for row in rows:
        key_id, wrapped, version, destroyed_at = row[split:]
        key = keys[key_id]
        assert (version, destroyed_at) == (key.kek_version, key.destroyed_at)
        assert bytes(wrapped or b"") == bytes(key.wrapped_key or b"")
    assert keys[shredded.data_key_id].destroyed_at is not None
