"""Master key versions in the database: the one in use, epochs, retirement dates.

The key ring (apps/crypto/keyring.py) holds the keys; the database says which version
new data keys go under, so every process follows one answer: the newest activated
version. A process whose ring lacks it looks again (an HSM may hold a version made
since) and otherwise refuses to wrap, rather than wrap under an older key.

A version's epoch lasts `AMANAH_KEY_EPOCH_DAYS` from its activation; beat's
`crypto.key_epoch` then makes the next version (where the provider can), rotates every
data key into it and retires what is due (apps/crypto/services.py). A version is due for
retirement once the last backup that may hold a key wrapped under it has expired:
`AMANAH_BACKUP_RETENTION_DAYS` after the later of its epoch's end and the rotation that
emptied it.

Lock order (apps/core/db.py): the master keys' session lock (`KEYS_LOCK`, one rotation
or retirement at a time) first, then MasterKey rows, then data keys; the audit chain
last. Wrapping a new data key only reads MasterKey.
"""

from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from apps.crypto.errors import KeyRingError
from apps.crypto.keyring import KeyRing, key_ring
from apps.crypto.models import DataKey, MasterKey

KEYS_LOCK = "crypto.master_keys"


def _newest_active() -> int | None:
    return MasterKey.objects.filter(activated_at__isnull=False).aggregate(
        newest=Max("version")
    )["newest"]


def master_key_active_version() -> int:
    """The version new data keys go under. A database that names none yet (a new
    installation, or one from before versions were recorded) takes the ring's newest."""
    version = _newest_active()
    if version is None:
        version = key_ring().active_version
        now = timezone.now()
        try:
            with transaction.atomic():
                MasterKey.objects.get_or_create(
                    version=version,
                    defaults={"provider": key_ring().provider, "activated_at": now},
                )
        except IntegrityError:  # another process recorded it first
            pass
        # Made by create_master_key and not yet in use: the first key puts it in use.
        MasterKey.objects.filter(version=version, activated_at__isnull=True).update(
            activated_at=now
        )
        version = _newest_active() or version
    return version


def master_key_for_wrapping() -> tuple[KeyRing, int]:
    """The ring and the version to wrap a new data key under. Raises KeyRingError when
    this process's ring lacks the version in use (it started before that version was
    made: restart it with the new key)."""
    ring = key_ring()
    version = master_key_active_version()
    if version not in ring.versions():
        ring.reload()
        if version not in ring.versions():
            raise KeyRingError(
                f"Master key version {version} is in use but not in this process's "
                f"key ring ({ring.where}); this process refuses to wrap new keys under "
                "an older version: restart it with the new key."
            )
    return ring, version


def master_keys_adopt(*, ring: KeyRing, now: datetime) -> None:
    """Record versions that the ring or the data keys name but the database does not
    (keys made by hand, data from before versions were recorded). A version older than
    the one in use is taken as superseded now, which errs on the side of keeping it."""
    known = set(MasterKey.objects.values_list("version", flat=True))
    named = set(ring.versions()) | set(
        DataKey.objects.filter(destroyed_at__isnull=True)
        .values_list("kek_version", flat=True)
        .distinct()
    )
    active = _newest_active()
    for version in sorted(named - known):
        older = active is not None and version < active
        MasterKey.objects.get_or_create(
            version=version,
            defaults={
                "provider": ring.provider,
                "activated_at": now if older else None,
                "superseded_at": now if older else None,
            },
        )


def master_key_activate(*, version: int, now: datetime) -> MasterKey:
    """Put `version` in use: new data keys go under it from now on, and the epoch of
    the version before it ends. The caller holds KEYS_LOCK and audits."""
    row, _ = MasterKey.objects.select_for_update(no_key=True).get_or_create(
        version=version, defaults={"provider": key_ring().provider}
    )
    if row.activated_at is None:
        row.activated_at = now
        row.save(update_fields=["activated_at"])
    MasterKey.objects.filter(
        version__lt=version, activated_at__isnull=False, superseded_at__isnull=True
    ).update(superseded_at=now)
    return row


def master_key_next_version() -> int:
    """One above every version the database or the ring knows."""
    known = MasterKey.objects.aggregate(newest=Max("version"))["newest"] or 0
    return max([known, *key_ring().versions()]) + 1


def epoch_days() -> int:
    return settings.AMANAH_KEY_EPOCH_DAYS


def backup_retention_days() -> int:
    return settings.AMANAH_BACKUP_RETENTION_DAYS


def _day_start(day: date) -> datetime:
    """Midnight at the start of `day` in TIME_ZONE: epochs and retirements go by the
    day, so that beat's daily run keeps the dates it gives, whatever minute it runs."""
    return timezone.make_aware(datetime.combine(day, time.min))


def master_key_epoch_ends(row: MasterKey) -> datetime | None:
    """The start of the day the epoch of `row` ends (None if never activated)."""
    if row.activated_at is None:
        return None
    return _day_start(
        timezone.localdate(row.activated_at) + timedelta(days=epoch_days())
    )


def master_key_epoch_due(*, now: datetime) -> bool:
    """Whether the version in use has served its epoch (by the day, TIME_ZONE)."""
    row = (
        MasterKey.objects.filter(activated_at__isnull=False)
        .order_by("-version")
        .first()
    )
    ends = master_key_epoch_ends(row) if row is not None else None
    return ends is not None and ends <= now


def master_key_retirement_due(moment: datetime) -> datetime:
    """When a version whose last key left it at `moment` may be retired: the start of
    the day the backup retention after that day ends (TIME_ZONE)."""
    return _day_start(
        timezone.localdate(moment) + timedelta(days=backup_retention_days())
    )


def master_key_retire_after(row: MasterKey) -> datetime | None:
    """When `row` may be retired (or was): the backup retention after the later of
    its epoch's end and the rotation that emptied it, by the day. For the version in
    use, or one not emptied yet, the date it gets if its epoch ends on time and the
    rotation (beat's, the same night) empties it that day. None if never activated."""
    if row.retired_at is not None:
        return row.retired_at
    ended = row.superseded_at or master_key_epoch_ends(row)
    if ended is None:
        return None
    return master_key_retirement_due(max(ended, row.emptied_at or ended))


def master_key_unreadable_on(*, version: int) -> tuple[datetime, bool] | None:
    """When every copy of a data key last wrapped under `version` becomes unreadable,
    and whether that has happened (the version is retired). Copies in backups taken
    earlier are under this version or older ones, which retire no later."""
    row = MasterKey.objects.filter(version=version).first()
    if row is None:
        return None
    when = master_key_retire_after(row)
    if when is None:
        return None
    return when, row.retired_at is not None


def master_key_rotation_unfinished() -> bool:
    """Whether the rotation into the version in use started and has not completed."""
    row = MasterKey.objects.filter(version=master_key_active_version()).first()
    return (
        row is not None
        and row.rotation_started_at is not None
        and (
            row.rotation_completed_at is None
            or row.rotation_completed_at < row.rotation_started_at
        )
    )
