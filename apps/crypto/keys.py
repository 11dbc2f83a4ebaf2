"""Data keys: generation, wrapping under the key ring, and a per-scope cache.

The cache makes a request or a job batch unwrap each customer's key once, never once per
field.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from apps.crypto.aead import seal, unseal
from apps.crypto.keyring import KEY_BYTES, key_ring
from apps.crypto.models import DataKey

_scope: ContextVar[dict | None] = ContextVar("amanah_key_scope", default=None)
_unwraps = 0


def _wrap_aad(data_key_id: object) -> bytes:
    return f"amanah:dek:{data_key_id}".encode()


def wrap(dek: bytes, *, data_key_id: object, kek: bytes) -> bytes:
    return seal(AESGCM(kek), dek, _wrap_aad(data_key_id))


def unwrap(data_key: DataKey) -> bytes:
    """The plain data key. Raises KeyRingError (unknown version) or IntegrityFailure."""
    global _unwraps
    _unwraps += 1
    kek = key_ring().get(data_key.kek_version)
    return unseal(
        AESGCM(kek),
        bytes(data_key.wrapped_key),
        _wrap_aad(data_key.pk),
        where=f"crypto_datakey:{data_key.pk}",
    )


def unwrap_count() -> int:
    """How many unwraps this process has done (for tests and benchmarks)."""
    return _unwraps


def data_key_new() -> DataKey:
    """A new, unsaved data key wrapped under the active master key."""
    ring = key_ring()
    data_key = DataKey(kek_version=ring.active_version)
    data_key.wrapped_key = wrap(
        os.urandom(KEY_BYTES), data_key_id=data_key.pk, kek=ring.active_key
    )
    return data_key


@contextmanager
def key_scope() -> Iterator[None]:
    """Cache unwrapped keys until the block ends (one request, one job batch)."""
    token = _scope.set({})
    try:
        yield
    finally:
        cache = _scope.get()
        if cache is not None:
            cache.clear()
        _scope.reset(token)


def aead_for(data_key: DataKey) -> AESGCM | None:
    """The cipher for a data key, or None once the key was destroyed."""
    cache = _scope.get()
    if cache is not None and data_key.pk in cache:
        return cache[data_key.pk]
    aead = None if data_key.is_destroyed else AESGCM(unwrap(data_key))
    if cache is not None:
        cache[data_key.pk] = aead
    return aead


def forget(data_key: DataKey) -> None:
    """Drop a key from the current scope's cache (after destroying it)."""
    cache = _scope.get()
    if cache is not None:
        cache.pop(data_key.pk, None)
