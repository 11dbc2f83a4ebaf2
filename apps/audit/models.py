from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One governance action, append-only and hash-chained.

    Each row stores the hash of the row before it (`prev_hash`) and the hash of its own
    canonical content together with that link (`hash`).
    """

    seq = models.PositiveBigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(editable=False, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        # Accounts are deactivated, never deleted, while the trail refers to them.
        on_delete=models.PROTECT,
        related_name="+",
    )
    actor_role = models.CharField(max_length=32, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    class Meta:
        ordering = ["-seq"]
        indexes = [
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action}"


class AuditChainHead(models.Model):
    """The furthest the trail has reached: one row, moved forward by a PostgreSQL
    trigger on every insert into the trail and never back.

    A trail emptied or cut at its tail behind the triggers' back (a superuser's DELETE
    with triggers off) still shows against it, without a checkpoint.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    seq = models.PositiveBigIntegerField(editable=False)
    hash = models.CharField(max_length=64, editable=False)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(id=1), name="audit_chain_head_single_row"
            )
        ]

    def __str__(self) -> str:
        return f"head #{self.seq}"


class AuditCheckpoint(models.Model):
    """A signed checkpoint written outside the database (AMANAH_AUDIT_CHECKPOINT_DIR,
    or a file `audit_checkpoint --output` named): when, the head it names, where."""

    taken_at = models.DateTimeField(db_index=True)
    seq = models.PositiveBigIntegerField()
    count = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)
    path = models.CharField(max_length=1024)
    kid = models.CharField(max_length=64)  # the signing key's id

    class Meta:
        ordering = ["-taken_at", "-pk"]

    def __str__(self) -> str:
        return f"checkpoint #{self.seq} at {self.taken_at:%Y-%m-%d %H:%M}"


class ChainVerification(models.Model):
    """One run of the chain check (beat's nightly task, `verify_audit_chain`, the
    audit page's "Verify now")."""

    class Source(models.TextChoices):
        TASK = "task", "Nightly task"
        COMMAND = "command", "verify_audit_chain"
        PAGE = "page", "Verify now (audit page)"

    verified_at = models.DateTimeField(db_index=True)
    ok = models.BooleanField()
    count = models.PositiveBigIntegerField()
    head_seq = models.PositiveBigIntegerField()
    reason = models.CharField(max_length=500, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    # The checkpoint it was checked against (its file name), if any.
    checkpoint = models.CharField(max_length=1024, blank=True)

    class Meta:
        ordering = ["-verified_at", "-pk"]

    def __str__(self) -> str:
        state = "intact" if self.ok else "broken"
        return f"chain {state} at {self.verified_at:%Y-%m-%d %H:%M}"
