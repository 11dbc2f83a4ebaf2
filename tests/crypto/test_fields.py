import base64
from datetime import date

import pytest
from django.db import connection

from apps.crypto.errors import IntegrityFailure, KeyRingError
from apps.crypto.fields import ERASED, Sealed
from apps.crypto.keys import key_scope, unwrap_count
from apps.customers.models import Customer
from apps.customers.selectors import customer_get, customer_list
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


def raw_column(customer_id, column: str) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM customers_customer WHERE id = %s",  # noqa: S608
            [customer_id.hex],
        )
        return bytes(cursor.fetchone()[0])


def set_raw_column(customer_id, column: str, value: bytes) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE customers_customer SET {column} = %s WHERE id = %s",  # noqa: S608
            [value, customer_id.hex],
        )


def test_values_round_trip_and_are_stored_sealed():
    customer = make_customer(email="jane@example.com", date_of_birth=date(1990, 1, 2))
    stored = raw_column(customer.pk, "email")
    assert stored[0] == 1  # storage format version
    assert len(stored) == 1 + 12 + len("jane@example.com") + 16
    assert b"jane" not in stored

    fresh = customer_get(customer_id=customer.pk)
    assert isinstance(fresh.__dict__["email"], bytes)  # lazy: not decrypted on load
    assert "_amanah_plain" not in fresh.__dict__
    assert fresh.email == "jane@example.com"
    assert fresh.date_of_birth == date(1990, 1, 2)


def test_two_encryptions_of_one_value_differ():
    a = make_customer(full_name="Same Name")
    b = make_customer(full_name="Same Name")
    assert raw_column(a.pk, "full_name") != raw_column(b.pk, "full_name")


def test_ciphertext_copied_to_another_column_fails_authentication():
    customer = make_customer()
    set_raw_column(customer.pk, "city", raw_column(customer.pk, "email"))
    with pytest.raises(IntegrityFailure, match="integrity check"):
        _ = customer_get(customer_id=customer.pk).city


def test_ciphertext_copied_to_another_row_fails_authentication():
    a, b = make_customer(), make_customer()
    set_raw_column(b.pk, "email", raw_column(a.pk, "email"))
    with pytest.raises(IntegrityFailure):
        _ = customer_get(customer_id=b.pk).email


def test_a_flipped_bit_fails_authentication_and_is_logged_without_the_value(caplog):
    customer = make_customer(email="flip@example.com")
    blob = bytearray(raw_column(customer.pk, "email"))
    blob[-1] ^= 0x01
    set_raw_column(customer.pk, "email", bytes(blob))
    with pytest.raises(IntegrityFailure):
        _ = customer_get(customer_id=customer.pk).email
    record = next(
        r for r in caplog.records if r.getMessage() == "crypto.integrity_failure"
    )
    assert record.where == f"customers_customer.email:{customer.pk}"
    assert "flip" not in caplog.text


def test_data_key_is_unwrapped_once_per_customer_per_scope():
    customers = [make_customer() for _ in range(3)]
    with key_scope():
        before = unwrap_count()
        loaded = list(customer_list().filter(pk__in=[c.pk for c in customers]))
        for customer in loaded:
            _ = (customer.full_name, customer.email, customer.phone, customer.city)
        for customer in customer_list().filter(pk__in=[c.pk for c in customers]):
            _ = customer.national_id
        assert unwrap_count() - before == 3


def test_encrypted_fields_refuse_filters_and_update():
    make_customer()
    with pytest.raises(TypeError, match="encrypted"):
        list(Customer.objects.filter(email="jane@example.com"))
    with pytest.raises(TypeError, match="encrypted"):
        Customer.objects.update(email="x@example.com")


def test_repr_and_str_never_show_values_or_ciphertext():
    customer = make_customer(full_name="Visible Person")
    fresh = customer_get(customer_id=customer.pk)
    assert repr(Sealed(fresh.__dict__["full_name"])) == "<sealed>"
    for text in (repr(fresh), str(fresh), repr(customer), str(customer.data_key)):
        assert "Visible" not in text
        assert "\\x" not in text


def test_unknown_master_key_version_is_named(settings):
    customer = make_customer()
    other = base64.b64encode(b"\x09" * 32).decode()
    settings.AMANAH_MASTER_KEYS = f"5:{other}"
    with pytest.raises(KeyRingError, match="version 1 is not in the key ring"):
        _ = customer_get(customer_id=customer.pk).email


def test_erased_marker_is_falsy_and_prints_as_erased():
    assert not ERASED
    assert str(ERASED) == "[erased]"


def test_a_backup_taken_before_erasure_opens_while_its_master_key_is_kept():
    """The limit the erasure texts state: shredding empties the live key row only; a
    backup holds both rows, and the master key that wraps its copy is still in use."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from apps.crypto.aead import unseal
    from apps.crypto.keys import unwrap_raw
    from apps.crypto.models import DataKey
    from apps.retention.services import customer_erase

    customer = make_customer(email="backup@example.com")
    backup_email = raw_column(customer.pk, "email")
    backup_key = DataKey.objects.values("wrapped_key", "kek_version").get(
        pk=customer.data_key_id
    )
    customer_erase(actor=None, customer=customer)
    assert DataKey.objects.get(pk=customer.data_key_id).wrapped_key is None
    dek = unwrap_raw(
        data_key_id=customer.data_key_id,
        wrapped=bytes(backup_key["wrapped_key"]),
        kek_version=backup_key["kek_version"],
    )
    aad = Customer._meta.get_field("email")._aad_prefix + str(customer.pk).encode()
    assert unseal(AESGCM(dek), backup_email, aad) == b"backup@example.com"
