import base64

import pytest

from apps.crypto.checks import check_keys
from apps.crypto.errors import IntegrityFailure, KeyRingError
from apps.crypto.keyring import key_ring


def b64(byte: int, n: int = 32) -> str:
    return base64.b64encode(bytes([byte]) * n).decode()


def test_the_ring_holds_every_version_and_names_its_newest(settings):
    settings.AMANAH_MASTER_KEYS = f"1:{b64(1)}, 3:{b64(3)},2:{b64(2)}"
    ring = key_ring()
    assert ring.versions() == {1, 2, 3}
    assert ring.active_version == 3
    sealed = ring.wrap(1, b"k" * 32, b"aad")
    assert ring.unwrap(1, sealed, b"aad") == b"k" * 32
    with pytest.raises(IntegrityFailure):
        ring.unwrap(2, sealed, b"aad")


def test_missing_version_is_named(settings):
    settings.AMANAH_MASTER_KEYS = f"2:{b64(2)}"
    with pytest.raises(
        KeyRingError,
        match=r"Master key version 1 is not in the key ring \(AMANAH_MASTER_KEYS\)",
    ):
        key_ring().unwrap(1, b"\x01" + b"x" * 40, b"aad")


def test_an_unknown_provider_is_refused(settings):
    settings.AMANAH_KEY_PROVIDER = "vault"
    with pytest.raises(KeyRingError, match="must be one of env, pkcs11"):
        key_ring()
    assert [e.id for e in check_keys(None)] == ["crypto.E001"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "holds no key"),
        ("nokey", "must look like"),
        ("0:" + b64(1), "must look like"),
        ("1:not-base64!!", "not valid base64"),
        ("1:" + b64(1, 16), "must be 32 bytes"),
        (f"1:{b64(1)},1:{b64(2)}", "version 1 twice"),
    ],
)
def test_malformed_rings_are_refused_with_a_clear_message(settings, raw, message):
    settings.AMANAH_MASTER_KEYS = raw
    with pytest.raises(KeyRingError, match=message):
        key_ring()
    assert [e.id for e in check_keys(None)] == ["crypto.E001"]


def test_blind_index_key_must_differ_from_master_keys(settings):
    settings.AMANAH_MASTER_KEYS = f"1:{b64(7)}"
    settings.AMANAH_BLIND_INDEX_KEY = b64(7)
    assert [e.id for e in check_keys(None)] == ["crypto.E003"]


def test_configured_keys_pass_the_check():
    assert check_keys(None) == []
