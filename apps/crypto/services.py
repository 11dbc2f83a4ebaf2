"""Writes on data keys: create, destroy (crypto-shred), rotate (rewrap)."""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.crypto.keyring import key_ring
from apps.crypto.keys import data_key_new, forget, unwrap, wrap
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


def _rewrap_batch(batch_size: int, to_version: int, kek: bytes) -> int:
    """Rewrap one batch in a short transaction of its own, skipping locked rows."""
    with transaction.atomic():
        rows = list(
            DataKey.objects.select_for_update(skip_locked=True)
            .filter(destroyed_at__isnull=True)
            .exclude(kek_version=to_version)
            .order_by("kek_version", "id")
            .only("id", "wrapped_key", "kek_version")[:batch_size]
        )
        if not rows:
            return 0
        ids = [row.pk for row in rows]
        blobs = [wrap(unwrap(row), data_key_id=row.pk, kek=kek) for row in rows]
        now = timezone.now()
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE crypto_datakey AS d "
                    "SET wrapped_key = v.w, kek_version = %s, rotated_at = %s "
                    "FROM unnest(%s::uuid[], %s::bytea[]) AS v(id, w) "
                    "WHERE d.id = v.id",
                    [to_version, now, ids, blobs],
                )
        else:
            for row, blob in zip(rows, blobs, strict=True):
                row.wrapped_key, row.kek_version, row.rotated_at = blob, to_version, now
            DataKey.objects.bulk_update(
                rows, ["wrapped_key", "kek_version", "rotated_at"]
            )
        return len(rows)


def data_keys_rotate(
    *,
    actor,
    batch_size: int = 5000,
    on_progress: Callable[[int], None] | None = None,
) -> RotationResult:
    """Rewrap every live data key under the active master key, in batches.

    Resumable: a key already under the active version is never touched again, so a run
    interrupted at any point is finished by the next one.
    """
    ring = key_ring()
    to_version, kek = ring.active_version, ring.active_key
    done = 0
    while True:
        count = _rewrap_batch(batch_size, to_version, kek)
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
