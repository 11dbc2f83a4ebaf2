"""Writes on data keys: create, destroy (crypto-shred), rotate (rewrap).

Lock order (apps/core/db.py): a rotation batch locks its data keys (skipping those
another worker holds) and takes nothing else; the audit chain comes after, on its own.
"""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import connection, transaction
from django.utils import timezone

from apps.accounts.models import User
from apps.audit import services as audit
from apps.core.db import server_cursor
from apps.crypto.keyring import key_ring
from apps.crypto.keys import data_key_new, forget, rewrap
from apps.crypto.models import DataKey

logger = logging.getLogger(__name__)


def data_key_create() -> DataKey:
    """Generate and store a new data key, wrapped under the active master key."""
    data_key = data_key_new()
    data_key.save(force_insert=True)
    return data_key


def data_keys_create_bulk(*, count: int) -> list[DataKey]:
    """Generate and store `count` data keys in one insert."""
    return DataKey.objects.bulk_create([data_key_new() for _ in range(count)])


def data_key_destroy(*, data_key: DataKey) -> None:
    """Destroy a data key for good. The caller audits the erasure it belongs to."""
    DataKey.objects.filter(pk=data_key.pk).update(
        wrapped_key=None, destroyed_at=timezone.now()
    )
    data_key.wrapped_key = None
    data_key.destroyed_at = timezone.now()
    forget(data_key)


@dataclass
class RotationResult:
    to_version: int
    rewrapped: int
    remaining: int


def _rewrap_batch(*, batch_size: int, to_version: int, after: Any) -> tuple[int, Any]:
    """Rewrap the next batch (by primary key, after `after`) in a short transaction of
    its own; rows another worker holds are skipped. Returns (count, last key seen)."""
    kek = key_ring().aead(to_version)
    with transaction.atomic():
        if connection.vendor == "postgresql":
            return _rewrap_batch_postgres(batch_size, to_version, after, kek)
        rows = list(
            DataKey.objects.select_for_update(no_key=True, skip_locked=True)
            .filter(destroyed_at__isnull=True, pk__gt=after)
            .exclude(kek_version=to_version)
            .order_by("pk")
            .values_list("pk", "wrapped_key", "kek_version")[:batch_size]
        )
        now = timezone.now()
        for pk, wrapped, version in rows:
            if wrapped is None:  # Only a destroyed key has none; none is selected.
                raise ValueError(f"Data key {pk} is destroyed.")
            blob = rewrap(data_key_id=pk, wrapped=wrapped, kek_version=version, kek=kek)
            DataKey.objects.filter(pk=pk).update(
                wrapped_key=blob, kek_version=to_version, rotated_at=now
            )
        return len(rows), (rows[-1][0] if rows else after)


def _rewrap_batch_postgres(
    batch_size: int, to_version: int, after: Any, kek: AESGCM
) -> tuple[int, Any]:
    """The same on PostgreSQL with server-side binding and binary parameters
    (`apps.core.db.server_cursor`): keys and blobs travel as parameters (never in SQL
    text), without text quoting in Python, and the UPDATE is bounded to the batch's
    key range so it never scans the table."""
    with server_cursor() as cursor:
        cursor.execute(
            "SELECT id, wrapped_key, kek_version FROM crypto_datakey "
            "WHERE destroyed_at IS NULL AND kek_version <> %s AND id > %s "
            "ORDER BY id LIMIT %s FOR NO KEY UPDATE SKIP LOCKED",
            [to_version, after, batch_size],
            binary=True,
        )
        rows = cursor.fetchall()
        if not rows:
            return 0, after
        ids = [pk for pk, _, _ in rows]
        blobs = [
            rewrap(data_key_id=pk, wrapped=wrapped, kek_version=version, kek=kek)
            for pk, wrapped, version in rows
        ]
        cursor.execute(
            "UPDATE crypto_datakey AS d "
            "SET wrapped_key = v.w, kek_version = %b, rotated_at = %b "
            "FROM unnest(%b::uuid[], %b::bytea[]) AS v(id, w) "
            "WHERE d.id = v.id AND d.id BETWEEN %b AND %b",
            [to_version, timezone.now(), ids, blobs, ids[0], ids[-1]],
        )
    return len(rows), ids[-1]


def data_keys_rotate(
    *,
    actor: User | None,
    batch_size: int = 5000,
    on_progress: Callable[[int], None] | None = None,
) -> RotationResult:
    """Rewrap every live data key under the active master key, in batches.

    Walks the table once in primary-key order. Resumable: a key already under the
    active version is never touched again, so a run interrupted at any point is finished
    by the next one; concurrent runs skip each other's locked rows.
    """
    to_version = key_ring().active_version
    done, after = 0, uuid.UUID(int=0)
    while True:
        count, after = _rewrap_batch(
            batch_size=batch_size, to_version=to_version, after=after
        )
        if not count:
            break
        done += count
        if on_progress:
            on_progress(count)
        logger.info(
            "crypto.rotate_batch", extra={"count": count, "to_version": to_version}
        )
    remaining = data_keys_pending_rotation()
    with transaction.atomic():
        audit.record(
            actor=actor,
            action="keys.rotated",
            details={
                "to_version": to_version,
                "rewrapped": done,
                "remaining": remaining,
            },
        )
    return RotationResult(to_version=to_version, rewrapped=done, remaining=remaining)


def data_keys_pending_rotation() -> int:
    """How many live data keys are not yet under the active master key."""
    return (
        DataKey.objects.filter(destroyed_at__isnull=True)
        .exclude(kek_version=key_ring().active_version)
        .count()
    )


def data_keys_destroy_bulk(*, data_key_ids: list[Any]) -> int:
    """Destroy many data keys in one statement (retention). The caller audits."""
    return DataKey.objects.filter(
        pk__in=data_key_ids, destroyed_at__isnull=True
    ).update(wrapped_key=None, destroyed_at=timezone.now())
