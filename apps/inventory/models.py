from django.db import models

from apps.consent.models import Purpose
from apps.inventory.texts import change_notice_summary
from apps.webhooks.models import Endpoint


class System(models.Model):
    """A place personal data lives: this database, the email provider, backups, ..."""

    name = models.CharField(max_length=100, unique=True)
    description = models.CharField(max_length=300)
    country = models.CharField(max_length=2)
    region = models.CharField(max_length=60, blank=True)
    data_categories = models.JSONField(default=list)
    retention = models.CharField(max_length=200, help_text="How long, in plain words.")
    security = models.TextField(help_text="Security measures, in plain words.")
    backup_days = models.PositiveIntegerField(
        default=0,
        help_text="How long backups of it are kept.",
    )
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Recipient(models.Model):
    """A third party that receives personal data, and what gates sharing with it."""

    name = models.CharField(max_length=100, unique=True)
    purpose = models.CharField(max_length=300)
    data_categories = models.JSONField(default=list)
    country = models.CharField(max_length=2)
    safeguards = models.CharField(
        max_length=200,
        blank=True,
        help_text="Transfer safeguards, e.g. SCCs, adequacy.",
    )
    gating_purpose = models.ForeignKey(
        Purpose,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Sharing needs the customer's consent to this purpose.",
    )
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Where erasures and corrections of customers whose data it received are sent
    # (GDPR art. 19).
    endpoint = models.ForeignKey(
        Endpoint,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ChangeNotice(models.Model):
    """A change to where data lives or who receives it that affects customers."""

    # In English (the source), for staff; customers read `text`, built from `parts`.
    summary = models.TextField()
    # What changed (apps/inventory/texts.py); empty for notices from before it was
    # kept: those are told in English, whole.
    parts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    recipient = models.ForeignKey(
        Recipient, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    system = models.ForeignKey(
        System, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.summary[:60]

    @property
    def text(self) -> str:
        """The summary in the active language (English for a notice without parts)."""
        if not self.parts:
            return self.summary
        return change_notice_summary(self.parts)


class ChangeNoticeDelivery(models.Model):
    notice = models.ForeignKey(ChangeNotice, on_delete=models.CASCADE, related_name="+")
    customer_id = models.UUIDField()
    sent_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "change notice deliveries"
        constraints = [
            models.UniqueConstraint(
                fields=["notice", "customer_id"], name="inventory_notice_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.notice_id}/{self.customer_id}"


class ShareRecord(models.Model):
    """A sharing of a customer's data with a recipient (allowed or refused)."""

    recipient = models.ForeignKey(Recipient, on_delete=models.PROTECT, related_name="+")
    customer_id = models.UUIDField(db_index=True)
    allowed = models.BooleanField()
    at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.recipient_id}/{self.customer_id}"
