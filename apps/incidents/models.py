import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from apps.core.i18n import language_is_rtl


class IncidentKind(models.TextChoices):
    OUTAGE = "outage", "Outage"
    BREACH = "breach", "Personal data breach"
    SUSPECTED_BREACH = "suspected_breach", "Suspected breach"
    VENDOR_BREACH = "vendor_breach", "Breach at a vendor"


BREACH_KINDS = frozenset(
    {IncidentKind.BREACH, IncidentKind.SUSPECTED_BREACH, IncidentKind.VENDOR_BREACH}
)


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class IncidentStatus(models.TextChoices):
    INVESTIGATING = "investigating", "Investigating"
    CONTAINED = "contained", "Contained"
    NOTIFYING = "notifying", "Notifying"
    MONITORING = "monitoring", "Monitoring"
    RESOLVED = "resolved", "Resolved"


STATUS_ORDER = list(IncidentStatus.values)


class RiskLevel(models.TextChoices):
    UNDETERMINED = "undetermined", "Not yet assessed"
    LOW = "low", "Unlikely to result in a risk"
    RISK = "risk", "A risk to people's rights"
    HIGH = "high", "A high risk to people's rights"


class Incident(models.Model):
    """An entry of the incident register: every incident stays, notified or not."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=IncidentKind.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    status = models.CharField(
        max_length=16,
        choices=IncidentStatus.choices,
        default=IncidentStatus.INVESTIGATING,
    )
    occurred_at = models.DateTimeField(null=True, blank=True)
    detected_at = models.DateTimeField()
    aware_at = models.DateTimeField(
        help_text="Became aware: the legal clocks start here."
    )
    assessed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Assessment finished (some laws count from it).",
    )
    contained_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    data_categories = models.JSONField(default=list, blank=True)
    systems = models.JSONField(default=list, blank=True)
    risk_level = models.CharField(
        max_length=16, choices=RiskLevel.choices, default=RiskLevel.UNDETERMINED
    )
    encrypted_keys_safe = models.BooleanField(
        default=False,
        help_text="Encrypted, and the keys were not taken (lowers the duty to notify).",
    )
    risk_reasoning = models.TextField(blank=True)
    # What customers are told, in plain language (the notice's required elements).
    what_happened = models.TextField(blank=True)
    what_we_are_doing = models.TextField(blank=True)
    what_you_can_do = models.TextField(blank=True)
    contact = models.CharField(max_length=300, blank=True)
    remedy_kind = models.CharField(
        max_length=20,
        blank=True,
        choices=[
            ("voucher", _("Voucher")),
            ("service_credit", _("Service credit")),
            ("monitoring", _("Monitoring subscription")),
        ],
    )
    remedy_description = models.CharField(max_length=300, blank=True)
    selection = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-aware_at"]

    def __str__(self) -> str:
        return self.title

    @property
    def is_breach(self) -> bool:
        return self.kind in BREACH_KINDS

    @property
    def is_closed(self) -> bool:
        return self.status == IncidentStatus.RESOLVED


class IncidentText(models.Model):
    """What customers are told, written by staff in one more language. The incident's
    own fields are the source-language version (settings.LANGUAGE_CODE); a customer's
    notice is wholly in one language (`apps.core.i18n.language_choose`)."""

    incident = models.ForeignKey(
        Incident, on_delete=models.PROTECT, related_name="texts"
    )
    language = models.CharField(max_length=8, choices=settings.LANGUAGES)
    what_happened = models.TextField()
    what_we_are_doing = models.TextField()
    what_you_can_do = models.TextField()
    contact = models.CharField(max_length=300)
    remedy_description = models.CharField(max_length=300, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["language"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "language"], name="incidents_text_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.incident_id} ({self.language})"


class TimelineEntry(models.Model):
    incident = models.ForeignKey(
        Incident, on_delete=models.PROTECT, related_name="timeline"
    )
    at = models.DateTimeField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    text = models.TextField()

    class Meta:
        verbose_name_plural = "timeline entries"
        ordering = ["at", "pk"]

    def __str__(self) -> str:
        return f"{self.incident_id} @ {self.at:%Y-%m-%d %H:%M}"


class AffectedCustomer(models.Model):
    """A snapshot of who an incident touches, kept even after the customer is gone."""

    incident = models.ForeignKey(
        Incident, on_delete=models.PROTECT, related_name="affected"
    )
    customer_id = models.UUIDField(db_index=True)
    country = models.CharField(max_length=2)
    region = models.CharField(max_length=6, blank=True)
    mailbox_compromised = models.BooleanField(
        default=False,
        help_text="Their mailbox credentials were taken: never email them.",
    )
    remedy_code = models.CharField(max_length=32, blank=True)
    remedy_redeemed_at = models.DateTimeField(null=True, blank=True)
    erased_before_notice = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Erased before any notice was queued: no one is left to tell, so "
        "not counted as affected and sent nothing (counted apart).",
    )
    erased_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When the customer was erased, if they already were when the "
        "snapshot was taken: erased before the incident occurred means their data "
        "was gone, so they are not affected (counted apart).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "customer_id"], name="incidents_affected_once"
            )
        ]
        indexes = [
            models.Index(
                fields=["incident", "country", "region"], name="incidents_aff_geo"
            ),
            models.Index(
                fields=["incident"],
                name="incidents_aff_erased",
                condition=models.Q(erased_before_notice=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.incident_id}/{self.customer_id}"


class Unit(models.TextChoices):
    HOURS = "hours", "hours"
    CALENDAR_DAYS = "calendar_days", "calendar days"
    BUSINESS_DAYS = "business_days", "business days"


class Audience(models.TextChoices):
    AUTHORITY = "authority", "Supervisory authority"
    INDIVIDUALS = "individuals", "Affected people"
    ATTORNEY_GENERAL = "attorney_general", "Attorney general"


class ClockStart(models.TextChoices):
    AWARE = "aware", "Becoming aware"
    ASSESSED = "assessed", "Finishing the assessment"


class DeadlineRule(models.Model):
    """A legal notification deadline as data, with its source and the day checked."""

    code = models.SlugField(max_length=50, unique=True)
    regime = models.CharField(max_length=100)
    jurisdiction = models.CharField(
        max_length=6,
        help_text="ISO country (ID), US state (US-CA), or EU for the union.",
    )
    audience = models.CharField(max_length=20, choices=Audience.choices)
    duration = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty: without undue delay, no fixed time."
    )
    unit = models.CharField(max_length=16, choices=Unit.choices, default=Unit.HOURS)
    clock_start = models.CharField(
        max_length=10, choices=ClockStart.choices, default=ClockStart.AWARE
    )
    min_affected = models.PositiveIntegerField(
        default=1,
        help_text="Applies when at least this many people there are affected.",
    )
    high_risk_only = models.BooleanField(default=False)
    encryption_exempt = models.BooleanField(
        default=False,
        help_text="Not owed when the data was encrypted and the keys were not taken.",
    )
    legal_source = models.CharField(max_length=300)
    verified_on = models.DateField()
    notes = models.CharField(max_length=300, blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["jurisdiction", "audience"]

    def __str__(self) -> str:
        return self.code


class PublicHoliday(models.Model):
    """Days that do not count as business days, per country."""

    country = models.CharField(max_length=2)
    date = models.DateField()
    name = models.CharField(max_length=100)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["country", "date"], name="incidents_holiday_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.country} {self.date}"


class RecordedDeadline(models.Model):
    """A deadline as it stood when the incident closed: later edits to the rule never
    move it."""

    incident = models.ForeignKey(
        Incident, on_delete=models.PROTECT, related_name="deadlines"
    )
    rule_code = models.CharField(max_length=50)
    regime = models.CharField(max_length=100)
    jurisdiction = models.CharField(max_length=6)
    audience = models.CharField(max_length=20, choices=Audience.choices)
    due_at = models.DateTimeField(null=True, blank=True)
    affected = models.PositiveIntegerField()
    legal_source = models.CharField(max_length=300)

    class Meta:
        ordering = ["due_at"]

    def __str__(self) -> str:
        return f"{self.incident_id}: {self.rule_code}"


class DeadlineNotification(models.Model):
    """That the body a deadline names was told: when, whom, under which reference.
    One per deadline of an incident; part of the record, never changed."""

    incident = models.ForeignKey(
        Incident, on_delete=models.PROTECT, related_name="notifications"
    )
    rule_code = models.CharField(max_length=50)
    audience = models.CharField(max_length=20, choices=Audience.choices)
    notified_at = models.DateTimeField(help_text="When the notification was made.")
    recipient = models.CharField(
        max_length=200,
        help_text="Which authority or body (for people: how they were told).",
    )
    reference = models.CharField(max_length=200, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["notified_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "rule_code"], name="incidents_notified_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.incident_id}: {self.rule_code} notified"


class AuthorityReport(models.Model):
    """The report to an authority for one deadline, as edited before it is sent;
    frozen once marked sent (`sent_at`, and the notification it recorded)."""

    incident = models.ForeignKey(
        Incident, on_delete=models.PROTECT, related_name="reports"
    )
    rule_code = models.CharField(max_length=50)
    sections = models.JSONField(default=dict, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    notification = models.OneToOneField(
        DeadlineNotification,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="report",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "rule_code"], name="incidents_report_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.incident_id}: {self.rule_code} report"


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    IN_APP = "in_app", "In-app"


class DeliveryStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RETRYING = "retrying", "Retrying"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"
    BOUNCED = "bounced", "Bounced"


# Still to be sent: the statuses a sending batch selects. Sent and failed are final.
PENDING_STATUSES = (DeliveryStatus.QUEUED, DeliveryStatus.RETRYING)


class NoticeWording(models.Model):
    """The words of an incident's notice as one rendering made them (one language,
    regime and set of data categories), stored once and shared by every notice
    rendered alike: ten million notices hold a few wordings, not ten million copies.
    Where a remedy is offered the texts hold `notices.CODE_MARK` where each notice
    puts its own code (`IncidentNotice.remedy_code`)."""

    incident = models.ForeignKey(
        Incident, on_delete=models.PROTECT, related_name="wordings"
    )
    # SHA-256 of the words (`notices.wording_digest`): a rerun finds the same row.
    digest = models.CharField(max_length=64)
    language = models.CharField(max_length=5)
    subject = models.CharField(max_length=200)
    # The plain text (email, SMS); `sections` is the same notice as headings and
    # texts, what the customer's page shows (empty for notices queued before it).
    body = models.TextField()
    sections = models.JSONField(default=list, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "digest"], name="incidents_wording_once"
            )
        ]

    def __str__(self) -> str:
        return f"Wording {self.pk} ({self.language})"


class IncidentNotice(models.Model):
    """One notice to one affected customer on one channel, with its delivery status.
    Its words are its `wording`'s with its own remedy code put in (`subject`, `body`,
    `sections`), in its wording's `language`."""

    incident = models.ForeignKey(
        Incident, on_delete=models.PROTECT, related_name="notices"
    )
    customer_id = models.UUIDField()
    channel = models.CharField(max_length=8, choices=Channel.choices)
    wording = models.ForeignKey(
        NoticeWording, on_delete=models.PROTECT, related_name="notices"
    )
    remedy_code = models.CharField(max_length=32, blank=True, default="", db_default="")
    status = models.CharField(
        max_length=8, choices=DeliveryStatus.choices, default=DeliveryStatus.QUEUED
    )
    queued_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    # db_default too: rows inserted by plain SQL (bench, imports) start at 0.
    attempts = models.PositiveSmallIntegerField(default=0, db_default=0)
    next_attempt_at = models.DateTimeField(
        null=True, blank=True, help_text="Retrying: not tried again before this."
    )
    claimed_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When a worker took it to send (committed before the send).",
    )
    error = models.CharField(
        max_length=200,
        blank=True,
        help_text="Why the last attempt failed, as a category (never an address).",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "customer_id", "channel"],
                name="incidents_notice_once",
            )
        ]
        indexes = [
            models.Index(fields=["incident", "status"], name="incidents_notice_status"),
            models.Index(
                fields=["customer_id", "sent_at"], name="incidents_notice_cust"
            ),
            # What is still to be sent, and when: the batches and the beat job.
            models.Index(
                fields=["incident", "next_attempt_at"],
                name="incidents_notice_due",
                condition=models.Q(status__in=["queued", "retrying"]),
            ),
            # Claims whose worker stopped before recording the outcome.
            models.Index(
                fields=["claimed_at"],
                name="incidents_notice_sending",
                condition=models.Q(status="sending"),
            ),
        ]

    def __str__(self) -> str:
        return f"Notice {self.pk} ({self.status})"

    @property
    def language(self) -> str:
        """The language the whole notice is in: its wording's."""
        return self.wording.language

    @property
    def subject(self) -> str:
        return self.wording.subject

    @property
    def body(self) -> str:
        """The plain text, with this notice's remedy code."""
        from apps.incidents.notices import code_put

        return code_put(self.wording.body, self.remedy_code)

    @property
    def sections(self) -> list[dict[str, str]]:
        """Headings and texts, with this notice's remedy code."""
        from apps.incidents.notices import code_put

        return [
            {**s, "text": code_put(s["text"], self.remedy_code)}
            for s in self.wording.sections
        ]

    @property
    def body_html(self) -> str:
        """The notice as HTML (headings and paragraphs), escaped."""
        from apps.incidents.notices import notice_html

        return notice_html(sections=self.sections, body=self.body)

    @property
    def direction(self) -> str:
        return "rtl" if language_is_rtl(self.language) else "ltr"


class ComponentState(models.TextChoices):
    OPERATIONAL = "operational", _("Operational")
    DEGRADED = "degraded", _("Degraded performance")
    PARTIAL_OUTAGE = "partial_outage", _("Partial outage")
    MAJOR_OUTAGE = "major_outage", _("Major outage")


# A component's staff-written texts: `name` is the English source; `translations`
# holds the others, {language: {"name": ...}}, each whole (core.i18n).
COMPONENT_TEXT_FIELDS = ("name",)


class StatusComponent(models.Model):
    name = models.CharField(max_length=100, unique=True)
    translations = models.JSONField(
        default=dict,
        blank=True,
        help_text='The name in other languages: {"id": {"name": "..."}, ...}.',
    )
    state = models.CharField(
        max_length=16,
        choices=ComponentState.choices,
        default=ComponentState.OPERATIONAL,
    )
    position = models.PositiveSmallIntegerField(default=100)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class UpdatePhase(models.TextChoices):
    INVESTIGATING = "investigating", _("Investigating")
    IDENTIFIED = "identified", _("Identified")
    MONITORING = "monitoring", _("Monitoring")
    RESOLVED = "resolved", _("Resolved")


DATA_AT_RISK_CHOICES = [
    ("no", _("Your data is not at risk")),
    ("yes", _("Some data may be at risk")),
    ("unknown", _("We are still checking")),
]


class StatusUpdate(models.Model):
    """A public plain-language update on the status page, published from an incident."""

    incident = models.ForeignKey(
        Incident, on_delete=models.PROTECT, related_name="status_updates"
    )
    phase = models.CharField(max_length=16, choices=UpdatePhase.choices)
    message = models.TextField()
    data_at_risk = models.CharField(
        max_length=8,
        choices=DATA_AT_RISK_CHOICES,
        default="unknown",
    )
    components = models.ManyToManyField(StatusComponent, blank=True, related_name="+")
    published_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-published_at", "-created_at"]

    def __str__(self) -> str:
        return f"{self.phase}: {self.message[:40]}"


class StatusUpdateText(models.Model):
    """A status update in one more language: its title and message. The source
    language's are the incident's title and the update's own message."""

    update = models.ForeignKey(
        StatusUpdate, on_delete=models.CASCADE, related_name="texts"
    )
    language = models.CharField(max_length=8, choices=settings.LANGUAGES)
    title = models.CharField(max_length=200)
    message = models.TextField()

    class Meta:
        ordering = ["language"]
        constraints = [
            models.UniqueConstraint(
                fields=["update", "language"], name="incidents_update_text_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.update_id} ({self.language})"
