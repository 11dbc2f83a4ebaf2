from django.conf import settings
from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy, ngettext

from apps.customers.models import Customer
from apps.customers.registry import DataCategory


class Covers(models.TextChoices):
    """What a policy disposes of: a record type, or a category of customer PII."""

    CLOSED_ACCOUNTS = "closed_accounts", "Closed customer accounts"
    INACTIVE_CUSTOMERS = "inactive_customers", "Inactive customers"
    CUSTOMER_PII = "customer_pii", "Customer personal data of one category"
    ACCESS_LOG = "access_log", "Access-log entries"
    CONSENT_EVENTS = "consent_events", "Consent events of withdrawn consents"
    INTERACTIONS = "interactions", "Interactions and contact sessions"


class Trigger(models.TextChoices):
    CREATED = "created", "Creation"
    LAST_ACTIVITY = "last_activity", "Last activity"
    CLOSED = "closed", "Account closed"
    CONSENT_WITHDRAWN = "consent_withdrawn", "Consent withdrawn"
    INTERACTION_CLOSED = "interaction_closed", "Interaction closed"


# The public data policy's words, in the customer's language.
CLOCK_TEXTS: dict[str, str | Promise] = {
    Trigger.LAST_ACTIVITY: gettext_lazy("your details were last entered or changed"),
    Trigger.CLOSED: gettext_lazy("your account was closed"),
    Trigger.CONSENT_WITHDRAWN: gettext_lazy("you withdrew the consent"),
    Trigger.INTERACTION_CLOSED: gettext_lazy("the case or delivery closed"),
}


class Action(models.TextChoices):
    # Shown on the public data policy too: translated.
    CRYPTO_SHRED = "crypto_shred", gettext_lazy("Crypto-shred (destroy the data key)")
    ANONYMIZE = (
        "anonymize",
        gettext_lazy("Pseudonymise (shred the details, keep a record number)"),
    )
    DELETE = "delete", gettext_lazy("Delete the records")


# Which triggers and actions make sense for each kind of record.
ALLOWED: dict[str, tuple[set[str], set[str]]] = {
    Covers.CLOSED_ACCOUNTS: ({Trigger.CLOSED}, {Action.CRYPTO_SHRED, Action.DELETE}),
    Covers.INACTIVE_CUSTOMERS: (
        {Trigger.LAST_ACTIVITY},
        {Action.ANONYMIZE, Action.CRYPTO_SHRED, Action.DELETE},
    ),
    Covers.CUSTOMER_PII: ({Trigger.CREATED, Trigger.LAST_ACTIVITY}, {Action.DELETE}),
    Covers.ACCESS_LOG: ({Trigger.CREATED}, {Action.DELETE}),
    Covers.CONSENT_EVENTS: ({Trigger.CONSENT_WITHDRAWN}, {Action.DELETE}),
    Covers.INTERACTIONS: ({Trigger.INTERACTION_CLOSED}, {Action.DELETE}),
}


POLICY_TEXT_FIELDS = ("description", "legal_basis")


class RetentionPolicy(models.Model):
    """How long one kind of data is kept, from when, and how it is disposed of."""

    code = models.SlugField(max_length=50, unique=True)
    covers = models.CharField(max_length=24, choices=Covers.choices)
    category = models.CharField(
        max_length=16,
        choices=DataCategory.choices,
        blank=True,
        help_text="For customer PII: the category whose fields are disposed of.",
    )
    period_days = models.PositiveIntegerField()
    trigger = models.CharField(max_length=24, choices=Trigger.choices)
    action = models.CharField(max_length=16, choices=Action.choices)
    legal_basis = models.CharField(max_length=300)
    description = models.TextField(
        help_text="Plain language, for the public data policy."
    )
    # The description and legal basis in the other languages (the fields above are
    # the English source): {"id": {"description": ..., "legal_basis": ...}, ...}. The
    # public data policy gives each policy whole in one language.
    translations = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "retention policies"
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    @property
    def period_text(self) -> str:
        """The period as the public data policy says it: whole years only when exact
        (548 days is not "2 years"), else days."""
        years, rest = divmod(self.period_days, 365)
        if years and not rest:
            return ngettext("%(count)d year", "%(count)d years", years) % {
                "count": years
            }
        return ngettext("%(count)d day", "%(count)d days", self.period_days) % {
            "count": self.period_days
        }

    @property
    def clock_text(self) -> str:
        """When the period starts, in the customer's words."""
        if self.trigger == Trigger.CREATED:
            if self.covers == Covers.ACCESS_LOG:
                return gettext("each look was recorded")
            return gettext("your account was opened")
        return str(CLOCK_TEXTS[self.trigger])


class LegalHold(models.Model):
    """Nothing under a hold is disposed of, whatever a policy says: one customer's data,
    or a whole kind of record."""

    # A released hold outlives the customer it named (disposal clears the link).
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    covers = models.CharField(max_length=24, choices=Covers.choices, blank=True)
    reason = models.CharField(max_length=300)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    placed_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(customer__isnull=False)
                | ~models.Q(covers="")
                | models.Q(released_at__isnull=False),
                name="retention_hold_has_scope",
            )
        ]
        indexes = [
            models.Index(fields=["customer", "released_at"], name="retention_hold_cust")
        ]

    def __str__(self) -> str:
        return f"LegalHold {self.pk}"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class DisposalRun(models.Model):
    """One execution of the disposal engine; the next run resumes an unfinished one."""

    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=RunStatus.choices)
    batch_size = models.PositiveIntegerField()
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"DisposalRun {self.pk} ({self.status})"


class DisposalProgress(models.Model):
    """A run's progress on one policy, committed with each batch."""

    run = models.ForeignKey(
        DisposalRun, on_delete=models.CASCADE, related_name="progress"
    )
    policy = models.ForeignKey(
        RetentionPolicy, on_delete=models.PROTECT, related_name="+"
    )
    disposed = models.PositiveBigIntegerField(default=0)
    batches = models.PositiveIntegerField(default=0)
    finished = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "disposal progress"
        constraints = [
            models.UniqueConstraint(
                fields=["run", "policy"], name="retention_progress_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.policy_id}: {self.disposed}"


class DisposalLogEntry(models.Model):
    """Proof of one disposal without PII: a keyed hash of the customer id."""

    run = models.ForeignKey(DisposalRun, on_delete=models.PROTECT, related_name="+")
    # Each disposal batch writes a row per customer: the (policy, disposed_at) index
    # below serves lookups by policy, so the key has no index of its own.
    policy = models.ForeignKey(
        RetentionPolicy, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    subject_ref = models.CharField(max_length=64)
    action = models.CharField(max_length=16, choices=Action.choices)
    records = models.PositiveIntegerField(default=1)
    disposed_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name_plural = "disposal log entries"
        indexes = [
            models.Index(fields=["policy", "disposed_at"], name="retention_log_policy")
        ]

    def __str__(self) -> str:
        return f"Disposal {self.pk}"


class ClockCount(models.Model):
    """How many rows of one retention scope have their clock on one UTC day: the
    compacted part of the clock histograms (apps/retention/clocks.py). Written only
    by the compaction job and the rebuild, one at a time; a day's count is this row
    plus the pending `ClockDelta` rows of the same key."""

    scope = models.CharField(max_length=48)
    day = models.DateField()
    rows = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "day"], name="retention_clock_day")
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.day}: {self.rows}"


class ClockDelta(models.Model):
    """A change to a clock histogram, written by PostgreSQL's statement triggers on
    the rows retention counts (insert only: no writer updates a shared counter, so
    no writer waits on another), folded into `ClockCount` by the compaction job."""

    id = models.BigAutoField(primary_key=True)
    scope = models.CharField(max_length=48)
    day = models.DateField()
    rows = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.scope} {self.day}: {self.rows:+d}"
