import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.crypto.fields import EncryptedTextField
from apps.crypto.models import DataKey


class EventType(models.TextChoices):
    CONSENT_CHANGED = "consent.changed", "A consent was granted or withdrawn"
    CUSTOMER_ERASED = "customer.erased", "A customer was erased"
    CUSTOMER_RECTIFIED = "customer.rectified", "A customer's data was corrected"
    CUSTOMER_RESTRICTED = "customer.restricted", "A customer's data was restricted"
    CUSTOMER_RESTRICTION_LIFTED = (
        "customer.restriction_lifted",
        "A restriction was lifted",
    )
    REQUEST_COMPLETED = "request.completed", "A customer's request was completed"


# What is passed on to each recipient that received the customer's data (GDPR art. 19).
ART19_TYPES = (EventType.CUSTOMER_ERASED, EventType.CUSTOMER_RECTIFIED)


class Scope(models.TextChoices):
    ALL = "all", "Every customer's events of its types"
    RECIPIENTS = "recipients", "Art. 19 events of customers whose data it received"


class Endpoint(models.Model):
    """A URL that receives signed events; its signing secret sealed under its key."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    url = models.URLField(max_length=500)
    description = models.CharField(max_length=200, blank=True)
    events = models.JSONField(default=list)
    scope = models.CharField(max_length=12, choices=Scope.choices, default=Scope.ALL)
    data_key = models.ForeignKey(DataKey, on_delete=models.PROTECT, related_name="+")
    secret = EncryptedTextField()
    # Deleting an endpoint makes it inactive (nothing more is sent to it); the purge
    # removes its row once none of its deliveries is kept.
    active = models.BooleanField(default=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["created_at"]
        constraints = [
            # One active endpoint per URL and scope (a form sent twice registers one).
            models.UniqueConstraint(
                fields=["scope", "url"],
                condition=Q(active=True),
                name="webhook_endpoint_active_url",
            ),
        ]

    def __str__(self) -> str:
        return self.url


def event_id_new() -> str:
    return f"msg_{uuid.uuid4().hex}"


class Event(models.Model):
    """The outbox: one event, written in the transaction of the change it tells."""

    id = models.CharField(
        primary_key=True, max_length=40, default=event_id_new, editable=False
    )
    type = models.CharField(max_length=40, choices=EventType.choices)
    customer_id = models.UUIDField(db_index=True)
    # The data request that caused it, if one did (a plain id: webhooks sits below
    # requests): the request's page shows what was passed on for it (GDPR art. 19).
    request_id = models.UUIDField(null=True, blank=True)
    payload = models.JSONField()
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(
                fields=["request_id"],
                name="webhook_event_request",
                condition=Q(request_id__isnull=False),
            ),
            # The purge: old events, oldest first.
            models.Index(fields=["created_at"], name="webhook_event_created"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    DEAD = "dead", "Dead letter"
    # Its endpoint was deleted before it was delivered: never sent.
    CANCELLED = "cancelled", "Cancelled"


class Delivery(models.Model):
    """One event on its way to one endpoint; in order per customer and endpoint."""

    id = models.BigAutoField(primary_key=True)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="+")
    # An endpoint is only ever deleted (by the purge) once none of its deliveries is
    # left; deleting one in use marks it inactive instead.
    endpoint = models.ForeignKey(
        Endpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    customer_id = models.UUIDField()
    # For a recipient's endpoint (GDPR art. 19): the recipients of the inventory it
    # stood for when the event was written, by name, kept with the delivery.
    recipients = models.JSONField(default=list, blank=True)
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    leased_until = models.DateTimeField(null=True, blank=True)
    # The claim that holds it: a sender writes only while its claim is the current
    # one (a stale sender, whose lease another took over, changes nothing).
    lease_id = models.UUIDField(null=True, blank=True)
    last_response = models.CharField(max_length=40, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    dead_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [
            # The due query: pending deliveries by time.
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=Q(status="pending"),
            ),
            # What holds a delivery back: an earlier one, pending or dead, for the
            # same endpoint and customer.
            models.Index(
                fields=["endpoint", "customer_id", "id"],
                name="webhook_delivery_blocking",
                condition=Q(status__in=["pending", "dead"]),
            ),
            # An endpoint's last answer (the list shows it).
            models.Index(
                fields=["endpoint", "last_attempt_at"],
                name="webhook_delivery_attempted",
                condition=Q(last_attempt_at__isnull=False),
            ),
            # The endpoint list's counts and delivery lists, by status.
            models.Index(fields=["endpoint", "status", "id"], name="webhook_by_status"),
            # The purge: finished deliveries by when they finished.
            models.Index(
                fields=["delivered_at"],
                name="webhook_delivery_delivered",
                condition=Q(status="delivered"),
            ),
            models.Index(
                fields=["cancelled_at"],
                name="webhook_delivery_cancelled",
                condition=Q(status="cancelled"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_id} → {self.endpoint_id} ({self.status})"
