from django.conf import settings
from django.db import models

from apps.consent.models import Purpose
from apps.customers.registry import DataCategory
from apps.inventory.models import Recipient, System
from apps.retention.models import RetentionPolicy


class ActivityBasis(models.TextChoices):
    """GDPR art. 6(1)'s six lawful bases, (a) to (f). (A consent purpose's basis,
    apps.consent.LegalBasis, is one of four: the ledger records no vital interests or
    public task.)"""

    CONSENT = "consent", "Consent"
    CONTRACT = "contract", "Performance of a contract"
    LEGAL_OBLIGATION = "legal_obligation", "Legal obligation"
    VITAL_INTERESTS = "vital_interests", "Vital interests"
    PUBLIC_TASK = "public_task", "Public task"
    LEGITIMATE_INTEREST = "legitimate_interest", "Legitimate interest"


class ProcessingActivity(models.Model):
    """One entry of the record of processing activities (GDPR art. 30): what is done
    with personal data, why, on what basis, where, who receives it and for how long.
    Its owner is a role in the business (never a customer)."""

    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=120)
    purpose = models.TextField(help_text="What the processing is for, in plain words.")
    legal_basis = models.CharField(max_length=24, choices=ActivityBasis.choices)
    data_subjects = models.CharField(
        max_length=200, help_text="Whose data, e.g. “Customers who agreed”."
    )
    data_categories = models.JSONField(
        default=list, help_text=f"Among: {', '.join(DataCategory.values)}."
    )
    consent_purpose = models.ForeignKey(
        Purpose,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The consent purpose this processing needs, if any.",
    )
    systems = models.ManyToManyField(System, blank=True, related_name="+")
    recipients = models.ManyToManyField(Recipient, blank=True, related_name="+")
    retention_policies = models.ManyToManyField(
        RetentionPolicy, blank=True, related_name="+"
    )
    owner = models.CharField(
        max_length=100,
        help_text="A role or person in the business, e.g. “Head of Marketing”.",
    )
    reviewed_at = models.DateField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "processing activities"

    def __str__(self) -> str:
        return self.code
