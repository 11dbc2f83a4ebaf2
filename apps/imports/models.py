import uuid

from django.conf import settings
from django.db import models

from apps.crypto.models import DataKey


class ImportStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class ImportJob(models.Model):
    """A CSV file a privacy admin uploaded, imported by a worker: its progress and
    summary. The file itself is personal data: it lives sealed in `ImportChunk`s
    under the job's own data key until the run ends, and the key is then destroyed."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    data_key = models.ForeignKey(
        DataKey, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    dry_run = models.BooleanField(default=False)
    status = models.CharField(
        max_length=8, choices=ImportStatus.choices, default=ImportStatus.QUEUED
    )
    total_bytes = models.BigIntegerField(default=0)
    bytes_read = models.BigIntegerField(default=0)
    rows_done = models.IntegerField(default=0)
    imported = models.IntegerField(default=0)
    updated = models.IntegerField(default=0)
    skipped = models.IntegerField(default=0)
    refused = models.IntegerField(default=0)
    # Why a run failed or stopped: a column name or a line number, never a value.
    reason = models.CharField(max_length=300, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import {self.pk} ({self.status})"

    @property
    def percent(self) -> int:
        if self.status == ImportStatus.DONE:
            return 100
        if not self.total_bytes:
            return 0
        return min(99, self.bytes_read * 100 // self.total_bytes)

    @property
    def is_running(self) -> bool:
        return self.status in (ImportStatus.QUEUED, ImportStatus.RUNNING)


class ImportChunk(models.Model):
    """About 1 MB of an uploaded file, sealed (AES-256-GCM) under its job's data key,
    bound to its job and position; deleted when the run ends."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="+")
    seq = models.IntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "seq"], name="import_chunk_seq")
        ]

    def __str__(self) -> str:
        return f"ImportChunk {self.job_id}/{self.seq}"


class ImportRowError(models.Model):
    """A refused row of a job: its line, the field and the error's code and message,
    never a value (`customers_import` drops a message that quotes one)."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="+")
    line = models.IntegerField()
    field = models.CharField(max_length=100, blank=True)
    code = models.CharField(max_length=40)
    message = models.CharField(max_length=300)

    class Meta:
        ordering = ["line", "pk"]

    def __str__(self) -> str:
        return f"ImportRowError {self.job_id}:{self.line}"
