"""Writes on data keys: create, destroy (crypto-shred), rotate (rewrap).

Lock order (apps/core/db.py): a rotation or retirement first takes the master keys'
session lock (one at a time, apps/crypto/masterkeys.py), then MasterKey rows in
transactions of their own; a rotation batch locks its data keys (skipping those another
transaction holds) and takes nothing else; the audit chain comes after, on its own.
"""

import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from apps.accounts.models import User
from apps.audit import services as audit
from apps.core.db import (
    advisory_session_lock,
    server_cursor,
    transactions_before_now_wait,
)
from apps.crypto.errors import CryptoError
from apps.crypto.keyring import KeyRing, key_ring
from apps.crypto.keys import data_key_new, data_keys_new, forget, rewrap
from apps.crypto.masterkeys import (
    KEYS_LOCK,
    master_key_activate,
    master_key_active_version,
    master_key_epoch_due,
    master_key_for_wrapping,
    master_key_next_version,
    master_key_retire_after,
    master_key_retirement_due,
    master_key_rotation_unfinished,
    master_keys_adopt,
)
from apps.crypto.models import DataKey, MasterKey

logger = logging.getLogger(__name__)
# Passes over the table in one rotation: a later pass takes the keys that another
# transaction held during the one before.
_ROTATION_PASSES = 3
_STRAGGLER_WAIT_SECONDS = 30


def data_key_create() -> DataKey:
    """Generate and store a new data key, wrapped under the active master key."""
    data_key = data_key_new()
    data_key.save(force_insert=True)
    return data_key


def data_keys_create_bulk(*, count: int) -> list[DataKey]:
    """Generate and store `count` data keys in one insert."""
    return DataKey.objects.bulk_create(data_keys_new(count))


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
    resumed: bool = False


def _rewrap_batch(
    *, ring: KeyRing, batch_size: int, to_version: int, after: Any
) -> tuple[int, Any, set[int]]:
    """Rewrap the next batch (by primary key, after `after`) in a short transaction of
    its own; rows another worker holds are skipped. Returns (count, last key seen,
    the versions the keys were under)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            return _rewrap_batch_postgres(ring, batch_size, to_version, after)
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
            blob = rewrap(
                data_key_id=pk,
                wrapped=wrapped,
                kek_version=version,
                ring=ring,
                version=to_version,
            )
            DataKey.objects.filter(pk=pk).update(
                wrapped_key=blob, kek_version=to_version, rotated_at=now
            )
        return (
            len(rows),
            (rows[-1][0] if rows else after),
            {version for _, _, version in rows},
        )


def _rewrap_batch_postgres(
    ring: KeyRing, batch_size: int, to_version: int, after: Any
) -> tuple[int, Any, set[int]]:
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
            return 0, after, set()
        ids = [pk for pk, _, _ in rows]
        blobs = [
            rewrap(
                data_key_id=pk,
                wrapped=wrapped,
                kek_version=version,
                ring=ring,
                version=to_version,
            )
            for pk, wrapped, version in rows
        ]
        cursor.execute(
            "UPDATE crypto_datakey AS d "
            "SET wrapped_key = v.w, kek_version = %b, rotated_at = %b "
            "FROM unnest(%b::uuid[], %b::bytea[]) AS v(id, w) "
            "WHERE d.id = v.id AND d.id BETWEEN %b AND %b",
            [to_version, timezone.now(), ids, blobs, ids[0], ids[-1]],
        )
    return len(rows), ids[-1], {version for _, _, version in rows}


class KeysBusy(CryptoError):
    status, code = 409, "keys_busy"


@contextmanager
def _keys_lock() -> Iterator[None]:
    with advisory_session_lock(KEYS_LOCK) as got:
        if not got:
            raise KeysBusy(
                "Another rotation or retirement of master keys is running; "
                "try again when it has ended."
            )
        yield


def _rotation_target(ring: KeyRing) -> tuple[int, bool]:
    """The version to rotate into, and whether it must be activated first: the ring's
    newest if newer than the one in use (never a retired one), else the one in use."""
    active = master_key_active_version()
    retired = set(
        MasterKey.objects.filter(retired_at__isnull=False).values_list(
            "version", flat=True
        )
    )
    newer = [v for v in ring.versions() if v > active and v not in retired]
    if newer:
        return max(newer), True
    master_key_for_wrapping()  # the ring must hold the version in use
    return active, False


def _rotation_begin(
    *, actor: User | None, ring: KeyRing, now: datetime, scheduled: bool
) -> tuple[int, int, bool]:
    """Activate the target if new, and audit the start (or the resumption of a run
    that did not finish). Returns (target, keys pending, resumed)."""
    with transaction.atomic():
        master_keys_adopt(ring=ring, now=now)
        target, activate = _rotation_target(ring)
        if activate:
            master_key_activate(version=target, now=now)
        row = MasterKey.objects.select_for_update(no_key=True).get(version=target)
        pending = data_keys_pending_rotation(to_version=target)
        if activate:
            audit.record(
                actor=actor,
                action="keys.activated",
                details={"version": target, "provider": ring.provider},
            )
        flag = {"scheduled": True} if scheduled else {}
        started = row.rotation_started_at
        resumed = started is not None and (
            row.rotation_completed_at is None or row.rotation_completed_at < started
        )
        if resumed and started is not None:
            interrupted = row.rotation_interrupted_at
            if interrupted is None or interrupted < started:
                # The run before died without a word (killed, machine lost).
                row.rotation_interrupted_at = now
                audit.record(
                    actor=None,
                    action="keys.rotation_interrupted",
                    details={"to_version": target, "cause": "found unfinished"},
                )
            audit.record(
                actor=actor,
                action="keys.rotation_resumed",
                details={"to_version": target, "pending": pending, **flag},
            )
        else:
            row.rotation_started_at = now
            row.rotation_interrupted_at = None
            audit.record(
                actor=actor,
                action="keys.rotation_started",
                details={"to_version": target, "pending": pending, **flag},
            )
        row.save()
    return target, pending, resumed


def _rotation_interrupted(
    *, actor: User | None, to_version: int, done: int, cause: str
) -> None:
    with transaction.atomic():
        MasterKey.objects.filter(version=to_version).update(
            rotation_interrupted_at=timezone.now()
        )
        audit.record(
            actor=actor,
            action="keys.rotation_interrupted",
            details={"to_version": to_version, "rewrapped": done, "cause": cause},
        )


def _rotation_completed(
    *, actor: User | None, to_version: int, done: int, moved: set[int]
) -> None:
    """Every live key is under `to_version`: the older versions are empty from now
    (a version keys were moved off in this run, from now even if it was before)."""
    now = timezone.now()
    with transaction.atomic():
        MasterKey.objects.filter(version=to_version).update(rotation_completed_at=now)
        MasterKey.objects.filter(
            version__lt=to_version, retired_at__isnull=True
        ).filter(Q(emptied_at__isnull=True) | Q(version__in=moved)).update(
            emptied_at=now
        )
        audit.record(
            actor=actor,
            action="keys.rotation_completed",
            details={"to_version": to_version, "rewrapped": done, "remaining": 0},
        )


def data_keys_rotate(
    *,
    actor: User | None,
    batch_size: int = 5000,
    on_start: Callable[[int, int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    scheduled: bool = False,
) -> RotationResult:
    """Rewrap every live data key under the ring's newest master key (activated first
    if it is not in use yet), in batches.

    One run at a time (KEYS_LOCK; raises KeysBusy). Walks the table in primary-key
    order, passing again over keys another transaction held. Resumable: a key already
    under the target is never touched again, so a run interrupted at any point is
    finished by the next one. Audited: started (or resumed), interrupted, completed.
    `on_start(to_version, pending)` is called once the target is known; `scheduled`
    marks beat's epoch rotation in the audit trail (monitoring's off-schedule rule
    leaves it alone).
    """
    ring = key_ring()
    with _keys_lock():
        to_version, pending, resumed = _rotation_begin(
            actor=actor, ring=ring, now=timezone.now(), scheduled=scheduled
        )
        # A transaction that read the version in use just before the activation may
        # still wrap a key under the old one: let those end, so that the passes below
        # find every such key (a straggler past the wait is the next run's).
        if not transactions_before_now_wait(timeout=_STRAGGLER_WAIT_SECONDS):
            logger.warning("crypto.rotation_started_with_open_transactions")
        if on_start:
            on_start(to_version, pending)
        done, moved = 0, set()
        try:
            for _ in range(_ROTATION_PASSES):
                after = uuid.UUID(int=0)
                while True:
                    count, after, versions = _rewrap_batch(
                        ring=ring,
                        batch_size=batch_size,
                        to_version=to_version,
                        after=after,
                    )
                    if not count:
                        break
                    done += count
                    moved |= versions
                    if on_progress:
                        on_progress(count)
                    logger.info(
                        "crypto.rotate_batch",
                        extra={"count": count, "to_version": to_version},
                    )
                remaining = data_keys_pending_rotation(to_version=to_version)
                if not remaining:
                    break
        except BaseException as exc:
            # Killed (SIGTERM, Ctrl-C), or the database or HSM failed: say so, if the
            # database still answers; the next run says "resumed" either way.
            try:
                _rotation_interrupted(
                    actor=actor,
                    to_version=to_version,
                    done=done,
                    cause=type(exc).__name__,
                )
            except Exception:  # the first error is the one to raise
                logger.warning("crypto.rotation_interrupt_unrecorded")
            raise
        if remaining:
            _rotation_interrupted(
                actor=actor, to_version=to_version, done=done, cause="keys busy"
            )
        else:
            _rotation_completed(
                actor=actor, to_version=to_version, done=done, moved=moved
            )
    return RotationResult(
        to_version=to_version, rewrapped=done, remaining=remaining, resumed=resumed
    )


def data_keys_pending_rotation(*, to_version: int | None = None) -> int:
    """How many live data keys are not under `to_version` (the version in use)."""
    if to_version is None:
        to_version = master_key_active_version()
    return (
        DataKey.objects.filter(destroyed_at__isnull=True)
        .exclude(kek_version=to_version)
        .count()
    )


# Creating and retiring master keys --------------------------------------------------


def master_key_create(*, actor: User | None) -> tuple[int, str | None]:
    """Make the next master key version. With `pkcs11` the HSM makes and keeps it;
    with `env` the key is returned, for the operator to add to AMANAH_MASTER_KEYS.
    It is not in use until a rotation activates it."""
    ring = key_ring()
    with _keys_lock():
        version = master_key_next_version()
        secret = ring.create(version)
        with transaction.atomic():
            MasterKey.objects.create(version=version, provider=ring.provider)
            audit.record(
                actor=actor,
                action="keys.created",
                details={"version": version, "provider": ring.provider},
            )
    return version, secret


@dataclass(frozen=True)
class Retirement:
    version: int
    outcome: str  # destroyed | remove_from_configuration | keys_left | not_yet
    keys_left: int = 0
    due: datetime | None = None


def master_keys_retire(
    *, actor: User | None, now: datetime | None = None
) -> list[Retirement]:
    """Retire every version whose epoch ended before the oldest backup still kept
    (`AMANAH_BACKUP_RETENTION_DAYS` ago, by the day in TIME_ZONE): destroyed in the
    HSM with `pkcs11`; with `env` recorded as retired, for the operator to remove
    from AMANAH_MASTER_KEYS. A version still wrapping a live data key is refused
    (`keys_left`, counted), and one emptied within the retention waits (`not_yet`,
    with the date)."""
    ring = key_ring()
    now = now or timezone.now()
    outcomes = []
    with _keys_lock():
        with transaction.atomic():
            master_keys_adopt(ring=ring, now=now)
        active = master_key_active_version()
        rows = [
            row
            for row in MasterKey.objects.filter(
                version__lt=active,
                retired_at__isnull=True,
                superseded_at__isnull=False,
            ).order_by("version")
            if row.superseded_at and master_key_retirement_due(row.superseded_at) <= now
        ]
        live = dict(
            DataKey.objects.filter(
                destroyed_at__isnull=True, kek_version__in=[r.version for r in rows]
            )
            .values_list("kek_version")
            .annotate(n=Count("id"))
        )
        for row in rows:
            if live.get(row.version):
                outcomes.append(
                    Retirement(row.version, "keys_left", keys_left=live[row.version])
                )
                continue
            if row.emptied_at is None:
                # Emptied without a rotation saying so: count from now, to be safe.
                row.emptied_at = now
                row.save(update_fields=["emptied_at"])
            due = master_key_retire_after(row)
            if due is None or due > now:
                outcomes.append(Retirement(row.version, "not_yet", due=due))
                continue
            destroyed = row.version in ring.versions() and ring.destroy(row.version)
            with transaction.atomic():
                MasterKey.objects.filter(version=row.version).update(retired_at=now)
                audit.record(
                    actor=actor,
                    action="keys.retired",
                    details={
                        "version": row.version,
                        "provider": ring.provider,
                        "destroyed": destroyed,
                    },
                )
            outcomes.append(
                Retirement(
                    row.version,
                    "destroyed" if destroyed else "remove_from_configuration",
                )
            )
    return outcomes


def master_keys_retired_in_ring() -> list[int]:
    """Retired versions this process's ring still holds (env: not yet removed)."""
    retired = set(
        MasterKey.objects.filter(retired_at__isnull=False).values_list(
            "version", flat=True
        )
    )
    return sorted(retired & set(key_ring().versions()))


def data_keys_destroy_bulk(*, data_key_ids: list[Any]) -> int:
    """Destroy many data keys in one statement (retention). The caller audits."""
    return DataKey.objects.filter(
        pk__in=data_key_ids, destroyed_at__isnull=True
    ).update(wrapped_key=None, destroyed_at=timezone.now())


@dataclass
class EpochResult:
    rotation: RotationResult | None
    retirements: list[Retirement]
    created: int | None = None  # a version made for the new epoch
    missing_key: bool = False  # the epoch ended and the ring has no newer key


def master_keys_epoch_advance(*, now: datetime | None = None) -> EpochResult:
    """Beat's daily step (`crypto.key_epoch`): when the version in use has served its
    epoch, move to a newer one (made in the HSM with `pkcs11`; with `env`, the newest
    an operator added to AMANAH_MASTER_KEYS, or an error logged and audited when there
    is none); rotate whatever is not under the version in use (a new epoch, an
    interrupted run, keys made by a process that had not yet seen the newest version);
    then retire what is due."""
    now = now or timezone.now()
    ring = key_ring()
    created, missing = None, False
    if master_key_epoch_due(now=now):
        active = master_key_active_version()
        if not any(v > active for v in ring.versions()):
            if ring.keeps_keys:
                created, _ = master_key_create(actor=None)
            else:
                missing = True
                logger.error("crypto.epoch_key_missing", extra={"version": active})
                with transaction.atomic():
                    audit.record(
                        actor=None,
                        action="keys.epoch_key_missing",
                        details={"version": active, "provider": ring.provider},
                    )
    rotation = None
    if (
        created
        or (not missing and master_key_epoch_due(now=now))
        or data_keys_pending_rotation()
        or master_key_rotation_unfinished()
    ):
        rotation = data_keys_rotate(actor=None, scheduled=True)
    retirements = master_keys_retire(actor=None, now=now)
    for item in retirements:
        if item.outcome == "remove_from_configuration":
            # env: retired in the database; the key itself is the operator's to remove.
            logger.warning(
                "crypto.master_key_to_remove", extra={"version": item.version}
            )
    return EpochResult(
        rotation=rotation,
        retirements=retirements,
        created=created,
        missing_key=missing,
    )
