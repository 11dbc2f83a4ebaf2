from django.db import models
from django.utils import timezone


class IdempotencyState(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"


class IdempotencyRecord(models.Model):
    """A request sent with an `Idempotency-Key` (apps.core.idempotency): claimed while
    it runs, then its answer, kept for `AMANAH_IDEMPOTENCY_HOURS` and replayed to a
    retry. The body is sealed: it can hold what the caller saw of a customer."""

    # "token:<pk>" or "user:<pk>": keys are per token (or per user, for a session).
    owner = models.CharField(max_length=40)
    key = models.CharField(max_length=255)
    # sha256 of the method, path and body: the same key with another request is a 422.
    fingerprint = models.CharField(max_length=64)
    state = models.CharField(max_length=16, choices=IdempotencyState.choices)
    # While in progress: until when the claim holds; past it, a retry takes it over
    # (the process that claimed it died).
    locked_until = models.DateTimeField(null=True, blank=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    # Content-Type, Location and ETag of the kept answer.
    headers = models.JSONField(default=dict, blank=True)
    # AES-GCM under a key derived from SECRET_KEY (apps.core.idempotency).
    body = models.BinaryField(null=True, blank=True)
    # The customer the answer shows, if any: erasing them forgets the answer.
    subject = models.CharField(max_length=64, blank=True, db_default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "key"], name="core_idempotency_owner_key"
            )
        ]
        indexes = [
            models.Index(
                fields=["subject"],
                name="core_idempotency_subject",
                condition=~models.Q(subject=""),
            )
        ]

    def __str__(self) -> str:
        # Neither the key nor the body: ids only.
        return f"Idempotency record {self.pk} ({self.state})"
