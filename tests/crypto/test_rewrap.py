import base64
import os
import uuid

import pytest

from apps.crypto.errors import IntegrityFailure
from apps.crypto.keyring import _env_ring, key_ring
from apps.crypto.keys import rewrap, wrap


def b64(byte: int) -> str:
    return base64.b64encode(bytes([byte]) * 32).decode()


def test_rewrap_opens_and_seals_with_the_ring_it_is_given(settings):
    # A rotation passes its one ring: rewrap must not look the process's up per key
    # (it is not even the same ring here, so a lookup would fail).
    settings.AMANAH_MASTER_KEYS = f"1:{b64(9)}"
    ring = _env_ring(f"2:{b64(2)},1:{b64(1)}")
    assert ring is not key_ring()
    key_id, dek = uuid.uuid4(), os.urandom(32)
    wrapped = wrap(dek, data_key_id=key_id, ring=ring, version=1)

    blob = rewrap(
        data_key_id=key_id, wrapped=wrapped, kek_version=1, ring=ring, version=2
    )

    assert ring.unwrap(2, blob, b"amanah:dek:" + str(key_id).encode()) == dek
    with pytest.raises(IntegrityFailure):
        rewrap(
            data_key_id=uuid.uuid4(),
            wrapped=wrapped,
            kek_version=1,
            ring=ring,
            version=2,
        )
