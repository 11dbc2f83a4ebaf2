"""The `pkcs11` key provider against a real SoftHSM2 token (tests/hsm.py)."""

import base64
import io
import multiprocessing
import os
import subprocess
import sys

import pkcs11
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pkcs11 import Attribute

from apps.crypto.errors import IntegrityFailure, KeyRingError
from apps.crypto.keyring import key_ring
from apps.crypto.keys import unwrap_raw
from apps.crypto.models import DataKey, MasterKey
from apps.crypto.services import data_keys_rotate, master_key_create
from apps.customers.selectors import customer_get
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


def _hsm_key(version: int):
    """The key object itself, as another PKCS#11 client would see it."""
    ring = key_ring()
    return ring._call(lambda session: ring._key(session, version))


def test_create_master_key_makes_a_key_that_never_leaves_the_hsm(hsm):
    out = io.StringIO()
    call_command("create_master_key", stdout=out, stderr=io.StringIO())
    assert "Made master key v1 in the HSM" in out.getvalue()
    assert MasterKey.objects.get(version=1).provider == "pkcs11"
    key = _hsm_key(1)
    assert key[Attribute.SENSITIVE] is True
    assert key[Attribute.EXTRACTABLE] is False
    with pytest.raises(pkcs11.exceptions.AttributeSensitive):
        key[Attribute.VALUE]
    # Nothing the ring keeps in this process is a 32-byte key.
    ring = key_ring()
    assert not [v for v in vars(ring).values() if isinstance(v, bytes)]


def test_customers_are_sealed_under_the_hsm_key_and_read_back(hsm):
    master_key_create(actor=None)
    customer = make_customer(email="hsm@example.com")
    data_key = DataKey.objects.get(pk=customer.data_key_id)
    assert data_key.kek_version == 1
    assert customer_get(customer_id=customer.pk).email == "hsm@example.com"


def test_a_tampered_wrapped_key_fails_its_integrity_check(hsm):
    master_key_create(actor=None)
    customer = make_customer()
    wrapped = bytearray(DataKey.objects.get(pk=customer.data_key_id).wrapped_key)
    wrapped[-1] ^= 1
    with pytest.raises(IntegrityFailure):
        unwrap_raw(data_key_id=customer.data_key_id, wrapped=wrapped, kek_version=1)
    # Bound to its own data key: another key's id does not open it either.
    original = DataKey.objects.get(pk=customer.data_key_id).wrapped_key
    with pytest.raises(IntegrityFailure):
        unwrap_raw(data_key_id=DataKey().pk, wrapped=original, kek_version=1)


def test_an_unknown_version_is_named(hsm):
    master_key_create(actor=None)
    with pytest.raises(
        KeyRingError, match=r"Master key version 7 is not in the key ring \(PKCS#11"
    ):
        unwrap_raw(data_key_id="x", wrapped=b"\x01" + b"0" * 60, kek_version=7)


def test_a_version_made_by_another_process_is_found_by_label(hsm, settings):
    master_key_create(actor=None)
    ring = key_ring()
    assert ring.versions() == {1}
    # Another process's ring (a copy that shares nothing but the token) makes v2.
    from apps.crypto.hsm import Pkcs11KeyRing

    other = Pkcs11KeyRing(
        library=hsm.library,
        token=hsm.token,
        pin=hsm.pin,
        label=settings.AMANAH_PKCS11_KEY_LABEL,
    )
    other.create(2)
    blob = other.wrap(2, b"k" * 32, b"aad")
    assert ring.unwrap(2, blob, b"aad") == b"k" * 32  # looked again on a miss


def test_rotation_and_retirement_through_the_hsm(hsm, settings):
    master_key_create(actor=None)
    customers = [make_customer(email=f"r{i}@example.com") for i in range(3)]
    master_key_create(actor=None)
    result = data_keys_rotate(actor=None, batch_size=2)
    assert (result.to_version, result.rewrapped, result.remaining) == (2, 3, 0)

    settings.AMANAH_BACKUP_RETENTION_DAYS = 0
    out = io.StringIO()
    call_command("retire_keys", stdout=out, stderr=io.StringIO())
    assert "Master key v1: destroyed in the HSM." in out.getvalue()
    assert key_ring().versions() == {2}
    assert MasterKey.objects.get(version=1).retired_at is not None
    for i, customer in enumerate(customers):
        assert customer_get(customer_id=customer.pk).email == f"r{i}@example.com"


def test_retire_keys_refuses_a_version_that_still_wraps_keys(hsm, settings):
    master_key_create(actor=None)
    make_customer()
    make_customer()
    master_key_create(actor=None)
    # v2 is put in use, but the rotation never ran: both keys are under v1.
    from apps.crypto.masterkeys import master_key_activate

    master_key_activate(version=2, now=MasterKey.objects.get(version=1).activated_at)
    settings.AMANAH_BACKUP_RETENTION_DAYS = 0
    with pytest.raises(
        CommandError,
        match=r"Master key v1 cannot be retired: 2 data keys are still wrapped",
    ):
        call_command("retire_keys", stdout=io.StringIO(), stderr=io.StringIO())
    assert key_ring().versions() == {1, 2}


def _unwrap_in_child(args, queue):
    key_id, wrapped = args
    try:
        queue.put(unwrap_raw(data_key_id=key_id, wrapped=wrapped, kek_version=1))
    except Exception as exc:
        queue.put(repr(exc))


def test_a_forked_child_opens_its_own_session(hsm):
    """Celery's prefork children and gunicorn's workers fork after the parent used the
    HSM: the child must initialise the library and log in again, not reuse the
    parent's session."""
    master_key_create(actor=None)
    customer = make_customer()
    row = DataKey.objects.get(pk=customer.data_key_id)
    expected = unwrap_raw(data_key_id=row.pk, wrapped=row.wrapped_key, kek_version=1)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(
        target=_unwrap_in_child, args=((row.pk, bytes(row.wrapped_key)), queue)
    )
    child.start()
    got = queue.get(timeout=30)
    child.join(timeout=30)
    assert got == expected
    # And the parent's session still works.
    assert unwrap_raw(data_key_id=row.pk, wrapped=row.wrapped_key, kek_version=1) == (
        expected
    )


def test_a_wrong_pin_fails_the_start_up_check(hsm, settings):
    """A process that starts with a wrong PIN (a `manage.py` of its own: PKCS#11 logs
    in a whole process) stops at the system check, naming the PIN, not showing it."""
    env = {
        **os.environ,
        **hsm.settings(settings.AMANAH_PKCS11_KEY_LABEL),
        "AMANAH_PKCS11_PIN": "0000",
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert "crypto.E001" in done.stderr
    assert "The PIN for PKCS#11 token" in done.stderr
    assert "0000" not in done.stderr + done.stdout


def test_missing_pkcs11_settings_are_named(settings):
    settings.AMANAH_KEY_PROVIDER = "pkcs11"
    settings.AMANAH_PKCS11_LIBRARY = ""
    with pytest.raises(KeyRingError, match="needs AMANAH_PKCS11_LIBRARY"):
        key_ring()


def test_moving_from_env_to_the_hsm_by_rotation(hsm, settings):
    """`env` keys stay readable beside the HSM (AMANAH_MASTER_KEYS as older
    versions) until a rotation moves every data key under a version made in the HSM."""
    env_key = base64.b64encode(os.urandom(32)).decode()
    settings.AMANAH_KEY_PROVIDER = "env"
    settings.AMANAH_MASTER_KEYS = f"1:{env_key}"
    customer = make_customer(email="moving@example.com")

    settings.AMANAH_KEY_PROVIDER = "pkcs11"
    assert key_ring().versions() == {1}
    out = io.StringIO()
    call_command("create_master_key", stdout=out, stderr=io.StringIO())
    assert "Made master key v2 in the HSM" in out.getvalue()
    assert data_keys_rotate(actor=None).remaining == 0
    settings.AMANAH_MASTER_KEYS = ""  # the env key is gone
    assert customer_get(customer_id=customer.pk).email == "moving@example.com"
    assert DataKey.objects.get(pk=customer.data_key_id).kek_version == 2


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("AMANAH_PKCS11_LIBRARY", "/nonexistent/libpkcs11.so", "could not be loaded"),
        ("AMANAH_PKCS11_TOKEN", "no-such-token", "No PKCS#11 token labelled"),
    ],
)
def test_an_unreachable_hsm_fails_the_start_up_check(
    hsm, settings, setting, value, message
):
    from django.test import override_settings

    from apps.crypto.checks import check_keys

    with override_settings(**{setting: value}):  # the fixture's teardown needs them
        [error] = check_keys(None)
    assert error.id == "crypto.E001"
    assert message in error.msg
