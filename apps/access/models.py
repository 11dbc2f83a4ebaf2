import uuid

from django.conf import settings
from django.db import models
from guardian.models import UserObjectPermissionBase

from apps.accounts.models import Role
from apps.customers.models import Customer
from apps.customers.registry import DataCategory

STAFF_ROLE_CHOICES = [(r.value, r.label) for r in Role if r != Role.CUSTOMER]


class Visibility(models.TextChoices):
    FULL = "full", "Full"
    MASKED = "masked", "Masked"
    HIDDEN = "hidden", "Hidden"


class FieldPolicy(models.Model):
    """One cell of the need-to-know matrix: how a role sees one category of data."""

    role = models.CharField(max_length=32, choices=STAFF_ROLE_CHOICES)
    category = models.CharField(max_length=16, choices=DataCategory.choices)
    visibility = models.CharField(max_length=8, choices=Visibility.choices)
    revealable = models.BooleanField(
        default=False,
        help_text="May be shown in full for a few minutes, with a reason.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "field policies"
        constraints = [
            models.UniqueConstraint(
                fields=["role", "category"], name="access_policy_cell"
            )
        ]

    def __str__(self) -> str:
        return f"{self.role}/{self.category}: {self.visibility}"


class InteractionKind(models.TextChoices):
    SUPPORT_CASE = "support_case", "Support case"
    DELIVERY = "delivery", "Delivery"


class Interaction(models.Model):
    """A staff member's reason to see a customer: open from `opened_at` until closed or
    `expires_at`, whichever comes first. Each has a masked contact alias."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=16, choices=InteractionKind.choices)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="interactions"
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="interactions"
    )
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    close_reason = models.CharField(max_length=16, blank=True)
    contact_alias = models.CharField(max_length=64, unique=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["staff", "closed_at", "expires_at"], name="access_inter_staff"
            ),
            models.Index(
                fields=["closed_at", "expires_at"], name="access_inter_expiry"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.pk}"

    def is_open_at(self, moment) -> bool:
        return self.closed_at is None and self.expires_at > moment


class CustomerUserObjectPermission(UserObjectPermissionBase):
    """django-guardian's direct foreign-key table for customer permissions: list queries
    join it by key instead of through generic content types."""

    content_object = models.ForeignKey(Customer, on_delete=models.CASCADE)


class RevealStatus(models.TextChoices):
    GRANTED = "granted", "Granted"
    REFUSED = "refused", "Refused"
    SUSPENDED = "suspended", "Suspended"


class Reveal(models.Model):
    """Full values of named fields for a few minutes, for a stated reason: until
    `expires_at`, and no longer than the interaction it was opened under is open."""

    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reveals"
    )
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    interaction = models.ForeignKey(
        Interaction,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The case it was opened under; it ends with it. None for governance "
        "roles, who see customers without one (or once the case is disposed of).",
    )
    fields = models.JSONField(default=list)
    reason = models.TextField()
    status = models.CharField(max_length=16, choices=RevealStatus.choices)
    refusal = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["staff", "created_at"], name="access_reveal_staff")
        ]

    def __str__(self) -> str:
        return f"Reveal {self.pk} ({self.status})"


class AccessPurpose(models.TextChoices):
    SUPPORT_CASE = "support_case", "your support case"
    DELIVERY = "delivery", "your delivery"
    SEARCH = "search", "finding your record to help you"
    GOVERNANCE = "governance", "privacy oversight"


class AccessLogEntry(models.Model):
    """One staff read of one customer's PII: which fields, shown how, and why."""

    # Every read writes these rows, so no index is kept twice: the (staff, created_at)
    # and (customer, created_at) indexes below serve lookups by staff or customer.
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    staff_role = models.CharField(max_length=32)
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    fields = models.JSONField(default=dict, help_text="field name → full or masked")
    purpose = models.CharField(max_length=16, choices=AccessPurpose.choices)
    interaction = models.ForeignKey(
        Interaction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reveal = models.ForeignKey(
        Reveal, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name_plural = "access log entries"
        indexes = [
            models.Index(fields=["customer", "created_at"], name="access_log_customer"),
            models.Index(fields=["staff", "created_at"], name="access_log_staff"),
        ]

    def __str__(self) -> str:
        return f"Access {self.pk}"


class RelayOutcome(models.TextChoices):
    CONNECTED = "connected", "Connected"
    REFUSED = "refused", "Refused (caller not a party)"
    GONE = "gone", "Session closed or expired"


class RelayEvent(models.Model):
    """One call or message relayed (or refused) through a contact alias."""

    interaction = models.ForeignKey(
        Interaction, on_delete=models.CASCADE, related_name="+"
    )
    caller_party = models.CharField(max_length=16, blank=True)
    outcome = models.CharField(max_length=16, choices=RelayOutcome.choices)
    created_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"Relay {self.pk} ({self.outcome})"
