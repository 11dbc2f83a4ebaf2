import uuid

from django.db import models


class DataKey(models.Model):
    """A 256-bit data key (DEK), stored only wrapped by a master key of the key ring.

    Destroying it (crypto-shredding) leaves `wrapped_key` empty: every value sealed
    under it is then unreadable wherever the key is read from the live table. A backup
    taken before still holds the wrapped key, and opens while its master key is in
    `AMANAH_MASTER_KEYS`, so the data ends only when that backup expires.
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
