from django.conf import settings
from django.db import models


class AlertSeverity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"


class AlertStatus(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    DISMISSED = "dismissed", "Dismissed"
    ESCALATED = "escalated", "Escalated to an incident"


class Alert(models.Model):
    """One hit of a monitoring rule, and how compliance handled it."""

    rule = models.CharField(max_length=40)
    severity = models.CharField(max_length=8, choices=AlertSeverity.choices)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The staff member concerned; empty for system rules.",
    )
    evidence = models.JSONField(
        default=dict, blank=True, help_text="Ids and counts only, never personal data."
    )
    dedupe_key = models.CharField(
        max_length=120,
        unique=True,
        help_text="The same hit in the same window raises one alert only.",
    )
    status = models.CharField(
        max_length=16, choices=AlertStatus.choices, default=AlertStatus.OPEN
    )
    reason = models.TextField(blank=True, help_text="Why it was dismissed.")
    handled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    handled_at = models.DateTimeField(null=True, blank=True)
    incident = models.ForeignKey(
        "incidents.Incident",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    reveals_suspended_at = models.DateTimeField(null=True, blank=True)
    notify_claimed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="High alerts: when a worker took its email to send.",
    )
    notified_at = models.DateTimeField(
        null=True, blank=True, help_text="High alerts: when it was emailed."
    )
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(
                fields=["status", "created_at"], name="monitoring_alert_status"
            ),
            models.Index(
                fields=["rule", "staff", "created_at"], name="monitoring_alert_rule"
            ),
        ]

    def __str__(self) -> str:
        return f"Alert {self.pk} ({self.rule}, {self.status})"


class LookupKind(models.TextChoices):
    SEARCH = "search", "Search by email or phone"
    NOT_FOUND = "not_found", "Customer id not found (404)"


class SearchBy(models.TextChoices):
    EMAIL = "email", "Email"
    PHONE = "phone", "Phone"
    BOTH = "both", "Email and phone"


class StaffLookup(models.Model):
    """A staff search by email or phone, or a 404 on a customer id: who and when, and
    the id asked for; never the searched value."""

    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=LookupKind.choices)
    search_by = models.CharField(max_length=8, choices=SearchBy.choices, blank=True)
    customer_id = models.UUIDField(
        null=True, blank=True, help_text="The customer id asked for (404s)."
    )
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["kind", "created_at"], name="monitoring_lookup_kind"),
            models.Index(
                fields=["staff", "kind", "created_at"], name="monitoring_lookup_staff"
            ),
        ]

    def __str__(self) -> str:
        return f"Lookup {self.pk} ({self.kind})"
