import uuid

from django.db import models


class DataKey(models.Model):
    """A 256-bit data key (DEK), stored only wrapped by a master key of the key ring.

    Destroying it (crypto-shredding) leaves `wrapped_key` empty: every value sealed
    under it is then unreadable wherever the key is read from the live table. A backup
    taken before still holds the wrapped key, and opens while its master key is in the
    key ring: the data ends when that backup expires or when the master key is retired
    (MasterKey), whichever comes first; a restore reapplies erasures from the journal.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    wrapped_key = models.BinaryField(null=True, editable=False)
    kek_version = models.PositiveIntegerField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    destroyed_at = models.DateTimeField(null=True, blank=True, editable=False)

    # No index on kek_version: rotation walks the primary key, and an unindexed version
    # lets PostgreSQL rewrite rows in place (HOT updates; see migration 0002).

    def __str__(self) -> str:
        return f"DataKey {self.pk} (v{self.kek_version})"

    def __repr__(self) -> str:
        return f"<DataKey {self.pk} v{self.kek_version}>"

    @property
    def is_destroyed(self) -> bool:
        return self.destroyed_at is not None


class MasterKey(models.Model):
    """A master key version's life, kept in the database every process reads: the key
    itself is the provider's (apps/crypto/keyring.py), never stored here.

    A version's epoch runs from its activation (new data keys go under it) to the next
    version's (`superseded_at`). It is emptied when a rotation has moved every live data
    key off it, and retired (destroyed in the HSM, or due for removal from
    AMANAH_MASTER_KEYS) once every backup taken while it still wrapped a key has
    expired. The rotation fields describe the rotation *into* this version.
    """

    version = models.PositiveIntegerField(primary_key=True)
    provider = models.CharField(max_length=16, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    superseded_at = models.DateTimeField(null=True, blank=True)
    emptied_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    rotation_started_at = models.DateTimeField(null=True, blank=True)
    rotation_interrupted_at = models.DateTimeField(null=True, blank=True)
    rotation_completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["version"]

    def __str__(self) -> str:
        return f"Master key v{self.version}"
