"""Data keys: generation, wrapping under the key ring, and a per-scope cache.

The cache makes a request or a job batch unwrap each customer's key once, never once per
field; `data_keys_preload` unwraps a whole page's keys with one query.
"""

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import connection

from apps.core.db import model_column_sql, model_source_sql
from apps.crypto.aead import seal, unseal
from apps.crypto.errors import IntegrityFailure
from apps.crypto.keyring import KEY_BYTES, KeyRing, key_ring
from apps.crypto.masterkeys import master_key_for_wrapping
from apps.crypto.models import DataKey

logger = logging.getLogger(__name__)

_scope: ContextVar[dict | None] = ContextVar("amanah_key_scope", default=None)
_unwraps = 0


def _wrap_aad(data_key_id: Any) -> bytes:
    return b"amanah:dek:" + str(data_key_id).encode()


def wrap(dek: bytes, *, data_key_id: Any, ring: KeyRing, version: int) -> bytes:
    return ring.wrap(version, dek, _wrap_aad(data_key_id))


def unwrap_raw(
    *,
    data_key_id: Any,
    wrapped: bytes | memoryview,
    kek_version: int,
    ring: KeyRing | None = None,
) -> bytes:
    """The plain data key, opened with `ring` (default: this process's key ring).
    Raises KeyRingError (unknown version) or IntegrityFailure."""
    global _unwraps
    _unwraps += 1
    ring = ring if ring is not None else key_ring()
    try:
        return ring.unwrap(kek_version, bytes(wrapped), _wrap_aad(data_key_id))
    except IntegrityFailure:
        logger.error(
            "crypto.integrity_failure", extra={"where": f"datakey:{data_key_id}"}
        )
        raise


def rewrap(
    *,
    data_key_id: Any,
    wrapped: bytes | memoryview,
    kek_version: int,
    ring: KeyRing,
    version: int,
) -> bytes:
    """A wrapped key, wrapped again under another master key (rotation), both with
    `ring`: the rotation's one ring, not looked up again per key (that lookup cost
    about a fifth of a rotation through SoftHSM2, bench/encryption.py)."""
    return wrap(
        unwrap_raw(
            data_key_id=data_key_id,
            wrapped=wrapped,
            kek_version=kek_version,
            ring=ring,
        ),
        data_key_id=data_key_id,
        ring=ring,
        version=version,
    )


def unwrap(data_key: DataKey) -> bytes:
    if data_key.wrapped_key is None:  # Callers check is_destroyed first.
        raise ValueError(f"Data key {data_key.pk} is destroyed.")
    return unwrap_raw(
        data_key_id=data_key.pk,
        wrapped=data_key.wrapped_key,
        kek_version=data_key.kek_version,
    )


def unwrap_count() -> int:
    """How many unwraps this process has done (for tests and benchmarks)."""
    return _unwraps


def data_keys_new(count: int) -> list[DataKey]:
    """New, unsaved data keys wrapped under the master key in use. Raises KeyRingError
    if this process's key ring lacks it (apps/crypto/masterkeys.py)."""
    ring, version = master_key_for_wrapping()
    keys = []
    for _ in range(count):
        data_key = DataKey(kek_version=version)
        data_key.wrapped_key = wrap(
            os.urandom(KEY_BYTES), data_key_id=data_key.pk, ring=ring, version=version
        )
        keys.append(data_key)
    return keys


def data_key_new() -> DataKey:
    """A new, unsaved data key wrapped under the master key in use."""
    return data_keys_new(1)[0]


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


def aead_for_id(data_key_id: Any, load: Callable[[], DataKey]) -> AESGCM | None:
    """The cipher for a data key (None once destroyed), from the scope cache if there;
    `load` fetches the key row only on a miss."""
    cache = _scope.get()
    if cache is not None:
        try:
            return cache[data_key_id]
        except KeyError:
            pass
    data_key = load()
    aead = None if data_key.is_destroyed else AESGCM(unwrap(data_key))
    if cache is not None:
        cache[data_key_id] = aead
    return aead


def data_keys_preload(data_key_ids: Iterable[Any]) -> None:
    """Unwrap many data keys into the current scope with one query (list pages)."""
    cache = _scope.get()
    if cache is None:
        return
    missing = {key_id for key_id in data_key_ids if key_id not in cache}
    if not missing:
        return
    if connection.vendor == "postgresql":
        # One array parameter instead of a thousand placeholders.
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, wrapped_key, kek_version, destroyed_at FROM crypto_datakey "
                "WHERE id = ANY(%s)",
                [list(missing)],
            )
            rows = cursor.fetchall()
    else:
        rows = DataKey.objects.filter(pk__in=missing).values_list(
            "pk", "wrapped_key", "kek_version", "destroyed_at"
        )
    data_keys_remember(rows)


def data_keys_remember(
    rows: Iterable[tuple[Any, bytes, int, datetime | None]],
) -> None:
    """Unwrap data-key rows (id, wrapped key, master-key version, destroyed at) that a
    caller's own query fetched into the current scope: a list query that joins
    crypto_datakey saves `data_keys_preload` its round trip."""
    cache = _scope.get()
    if cache is None:
        return
    for key_id, wrapped, version, destroyed_at in rows:
        if key_id in cache:
            continue
        cache[key_id] = (
            None
            if destroyed_at is not None
            else AESGCM(
                unwrap_raw(data_key_id=key_id, wrapped=wrapped, kek_version=version)
            )
        )


@dataclass(frozen=True)
class DataKeySql:
    """Data-key rows in a statement written by hand in another app (access's agent
    list joins each customer's key), as SQL fragments under one alias: the table and
    its columns come from the model, so they stay this app's to name."""

    source: str  # the FROM item: the table under the alias
    id: str  # the primary key: join on it
    # The wrapped key, its master-key version, destroyed at: after the id, a row
    # `data_keys_remember` takes.
    columns: str


def data_key_sql(alias: str) -> DataKeySql:
    """The `DataKeySql` fragments of data keys under `alias` (an SQL identifier
    written by the caller, never input)."""
    column = model_column_sql(DataKey, alias)
    return DataKeySql(
        source=model_source_sql(DataKey, alias),
        id=column["id"],
        columns=", ".join(
            column[name] for name in ("wrapped_key", "kek_version", "destroyed_at")
        ),
    )


def forget(data_key: DataKey) -> None:
    """Drop a key from the current scope's cache (after destroying it)."""
    cache = _scope.get()
    if cache is not None:
        cache.pop(data_key.pk, None)


def seal_with(data_key: DataKey, plaintext: bytes, aad: bytes) -> bytes:
    """Seal bytes under a customer's data key (exports, files). Raises ValueError if
    the key was destroyed."""
    aead = aead_for_id(data_key.pk, lambda: data_key)
    if aead is None:
        raise ValueError("The data key was destroyed.")
    return seal(aead, plaintext, aad)


def open_with(data_key: DataKey, blob: bytes | memoryview, aad: bytes) -> bytes | None:
    """Open bytes sealed by `seal_with`; None once the key was destroyed."""
    aead = aead_for_id(data_key.pk, lambda: data_key)
    return None if aead is None else unseal(aead, bytes(blob), aad)
