import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from apps.crypto.fields import EncryptedTextField
from apps.crypto.models import DataKey
from apps.customers.models import Customer


class RequestKind(models.TextChoices):
    ACCESS = "access", _("A copy of my data")
    PORTABILITY = "portability", _("My data in a machine-readable file")
    RECTIFICATION = "rectification", _("Correct my data")
    ERASURE = "erasure", _("Erase my data")
    RESTRICTION = "restriction", _("Restrict the use of my data")
    OBJECTION = "objection", _("Object to a use of my data")


class ObjectionTo(models.TextChoices):
    """What an objection (GDPR art. 21) is to."""

    MARKETING = "marketing", _("Direct marketing")
    OTHER = "other", _("Other use of my data")


class RequestStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    VERIFYING = "verifying", _("Verifying identity")
    IN_PROGRESS = "in_progress", _("In progress")
    COMPLETED = "completed", _("Completed")
    REFUSED = "refused", _("Refused")


OPEN_STATUSES = (
    RequestStatus.RECEIVED,
    RequestStatus.VERIFYING,
    RequestStatus.IN_PROGRESS,
)


class DataRequestQuerySet(models.QuerySet["DataRequest"]):
    def update(self, **kwargs: Any) -> int:
        """A set-based write moves `updated_at` too, unless the caller sets it (see
        `Customer`'s queryset)."""
        kwargs.setdefault("updated_at", timezone.now())
        return super().update(**kwargs)


class DataRequest(models.Model):
    """A customer's request about their data, with its legal due date."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(
        Customer, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The customer's data key: a correction's new value and the customer's own words
    # are sealed like their PII, and go when it is destroyed.
    data_key = models.ForeignKey(
        DataKey, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=RequestKind.choices)
    status = models.CharField(
        max_length=12, choices=RequestStatus.choices, default=RequestStatus.RECEIVED
    )
    regime = models.CharField(max_length=40)
    received_at = models.DateTimeField()
    due_at = models.DateTimeField()
    extended = models.BooleanField(default=False)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    verification = models.CharField(
        max_length=200,
        blank=True,
        help_text="How staff verified the customer's identity.",
    )
    field = models.CharField(
        max_length=40, blank=True, help_text="Rectification: which field."
    )
    objection_to = models.CharField(
        max_length=12,
        choices=ObjectionTo.choices,
        blank=True,
        help_text="Objection: to direct marketing, or to another use.",
    )
    # The language the customer's own request came in (a code of settings.LANGUAGES;
    # blank when staff opened it): its emails use it when the customer saved none
    # (apps/customers/selectors.customer_language). On the row, so that processing
    # queued again (`requests_process_stalled`) keeps it.
    language = models.CharField(
        max_length=8,
        blank=True,
        default="",
        db_default="",
        help_text="The language the customer's own request came in.",
    )
    new_value = EncryptedTextField()
    details = EncryptedTextField(
        help_text="What the customer wrote (“Anything we should know”), up to 500 "
        "characters."
    )
    outcome = models.TextField(blank=True, help_text="Refusal reason or what was done.")
    # What the customer reads the outcome in their language from, for an outcome with
    # values in it: {"code": ..., "params": {...}} (ids only, never personal data;
    # selectors.request_outcome_text). Empty: `outcome` is shown as it is (translated
    # when it is one marked sentence).
    outcome_parts = models.JSONField(default=dict, blank=True)
    certificate = models.JSONField(default=dict, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    field = models.CharField(
        max_length=40, blank=True, help_text="Which field to correct."
    )
    export_blob = models.BinaryField(null=True, editable=False)
    export_ready_at = models.DateTimeField(null=True, blank=True)
    export_downloaded_at = models.DateTimeField(null=True, blank=True)
    # The sync feed's clock, moved by every write of the row: opening, each
    # transition, an extension, completion, the export's life, a link to a customer or
    # key set to NULL by their deletion. As `Customer.updated_at`: `auto_now` and
    # `save`, the queryset's `update`, and on PostgreSQL a trigger (migration 0004).
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    objects = DataRequestQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["status", "due_at"], name="dsr_queue"),
            # The sync feed's keyset order.
            models.Index(fields=["updated_at", "id"], name="dsr_updated"),
        ]
        ordering = ["due_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A save of some fields is a write of the row too: `auto_now` stamps
        # `updated_at` only when it is among them. An empty list still saves nothing.
        fields = kwargs.get("update_fields")
        if fields:
            kwargs["update_fields"] = {*fields, "updated_at"}
        super().save(*args, **kwargs)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


class RequestEvent(models.Model):
    """The request's history: each transition, with its reason."""

    request = models.ForeignKey(
        DataRequest, on_delete=models.CASCADE, related_name="events"
    )
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(max_length=12, choices=RequestStatus.choices)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.request_id} → {self.status}"
