import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone

from apps.crypto.blind import normalize_email, normalize_phone
from apps.crypto.fields import BlindIndexField, EncryptedDateField, EncryptedTextField
from apps.crypto.models import DataKey


class CustomerStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    CLOSED = "closed", "Closed"


class CustomerQuerySet(models.QuerySet["Customer"]):
    def update(self, **kwargs: Any) -> int:
        """A set-based write moves `updated_at` too, unless the caller sets it (on
        SQLite nothing else would; on PostgreSQL the trigger would, but with the
        database's clock rather than the one every other write of the app uses)."""
        kwargs.setdefault("updated_at", timezone.now())
        return super().update(**kwargs)


class Customer(models.Model):
    """A customer record. PII columns are sealed under the customer's own data key
    (see apps.customers.registry for their categories); plain columns are what
    jurisdiction and reporting need, and nothing more."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    data_key = models.OneToOneField(DataKey, on_delete=models.PROTECT, related_name="+")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="customer",
    )
    status = models.CharField(
        max_length=16, choices=CustomerStatus.choices, default=CustomerStatus.ACTIVE
    )
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    region = models.CharField(max_length=6, blank=True, help_text="ISO 3166-2")
    # The language the customer chose for Amanah's pages, emails and notices (a code
    # of settings.LANGUAGES); blank until they choose (apps/core/i18n.py then picks).
    # `db_default`: rows inserted by SQL or COPY (imports, benches) get one too.
    language = models.CharField(max_length=8, blank=True, default="", db_default="")
    created_at = models.DateTimeField(db_index=True)
    last_activity_at = models.DateTimeField(db_index=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)
    # The sync feed's clock: moved by every write of the row. `auto_now` covers a
    # save (`save` adds it to `update_fields`), the queryset's `update` a set-based
    # write, and on PostgreSQL a trigger any other UPDATE (raw SQL, a foreign key set
    # to NULL; migration 0003). `db_default`: rows inserted by SQL get one too.
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

    full_name = EncryptedTextField()
    email = EncryptedTextField()
    phone = EncryptedTextField()
    address_line = EncryptedTextField()
    city = EncryptedTextField()
    postal_code = EncryptedTextField()
    date_of_birth = EncryptedDateField()
    national_id = EncryptedTextField()
    notes = EncryptedTextField()
    payment_token = EncryptedTextField()
    card_last4 = EncryptedTextField()

    # One customer per email address: it is how a customer signs in.
    email_index = BlindIndexField(
        source="email", normalizer=normalize_email, unique=True
    )
    phone_index = BlindIndexField(source="phone", normalizer=normalize_phone)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        indexes = [
            # The sync feed's keyset order.
            models.Index(fields=["updated_at", "id"], name="customers_updated_idx"),
            models.Index(fields=["country", "region"], name="customers_country_idx"),
            models.Index(fields=["status", "closed_at"], name="customers_status_idx"),
            models.Index(
                fields=["id"],
                name="customers_erased_idx",
                condition=models.Q(erased_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"Customer {self.pk}"

    def __repr__(self) -> str:
        return f"<Customer {self.pk}>"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # A save of some fields is a write of the row too: `auto_now` stamps
        # `updated_at` only when it is among them. An empty list still saves nothing.
        fields = kwargs.get("update_fields")
        if fields:
            kwargs["update_fields"] = {*fields, "updated_at"}
        super().save(*args, **kwargs)

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None


class RestrictionSource(models.TextChoices):
    """Why a customer's data came to be restricted (GDPR art. 18)."""

    REQUEST = "request", "The customer's request"
    LEGAL_HOLD = "legal_hold", "A legal hold stopped an erasure"
    OBJECTION_REVIEW = "objection_review", "An objection under review"
    STAFF = "staff", "Staff"


class Restriction(models.Model):
    """The customer's data restricted to one stated purpose (GDPR art. 18), until a
    privacy admin lifts it, the customer told first (art. 18(3)). While one is active
    (`lifted_at` null) the customer is in no audience and no data share, and staff
    see full values only for that purpose. Active ones are few and indexed apart
    (restriction_active_idx): audiences leave them out with a cheap `NOT IN`."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    # The stated ground, in plain text: checked to hold no personal data.
    purpose = models.CharField(max_length=300)
    source = models.CharField(max_length=20, choices=RestrictionSource.choices)
    # The customer's request that led to it, if any. A plain id: requests are a
    # layer above customers.
    request_id = models.UUIDField(null=True, blank=True)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    placed_at = models.DateTimeField()
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    lifted_at = models.DateTimeField(null=True, blank=True)
    lift_reason = models.CharField(max_length=500, blank=True)
    # Art. 18(3): the customer is told before a lift. Not when they were told (we do
    # not know it), but when the privacy admin lifting it confirmed they had been.
    customer_told_confirmed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the privacy admin confirmed the customer had been told.",
    )

    class Meta:
        indexes = [
            models.Index(
                fields=["customer"],
                name="restriction_active_idx",
                condition=models.Q(lifted_at__isnull=True),
            ),
        ]
        ordering = ["placed_at", "pk"]

    def __str__(self) -> str:
        return f"Restriction {self.pk}"

    @property
    def is_active(self) -> bool:
        return self.lifted_at is None


class ErasureAction(models.TextChoices):
    """What an erasure did to a customer, as the erasure journal names it."""

    ERASED = "erased", "Erased"
    ANONYMIZED = "anonymized", "Anonymized"
    DELETED = "deleted", "Deleted"
    CLEARED = "cleared", "Fields cleared"


class ErasureJournalPending(models.Model):
    """Erasures committed but not yet appended to the erasure journal (the file
    `AMANAH_ERASURE_JOURNAL`, outside the database): written in the erasure's own
    transaction, deleted once its lines are in the file (apps.customers.journal). One
    row per erasure call, however many customers it covers: a disposal batch adds one
    row, not thousands. No PII: ids, the action, its time and field names."""

    action = models.CharField(max_length=16, choices=ErasureAction.choices)
    at = models.DateTimeField()
    # [[customer id, data key id], ...] as text.
    customers = models.JSONField()
    # The fields cleared (ErasureAction.CLEARED only).
    fields = models.JSONField(default=list, blank=True)

    def __str__(self) -> str:
        return f"Pending erasure journal entry {self.pk}"
