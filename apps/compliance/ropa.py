"""The record of processing activities (GDPR art. 30), read: each activity with its
purpose, legal basis, data subjects and categories, recipients, transfers to third
countries (systems and recipients outside the controller's country, with their
safeguards), retention periods (its retention policies), security measures (its
systems'), owner and last review. Built from `ProcessingActivity` and what it links
to in consent, inventory and retention."""

import csv
import io
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from apps.compliance.models import ActivityBasis, ProcessingActivity
from apps.customers.registry import DataCategory

# A review older than this is flagged.
REVIEW_DAYS = 365

# Where each basis sits in the GDPR (art. 6(1)).
BASIS_ARTICLES: dict[str, str] = {
    ActivityBasis.CONSENT: "GDPR art. 6(1)(a)",
    ActivityBasis.CONTRACT: "GDPR art. 6(1)(b)",
    ActivityBasis.LEGAL_OBLIGATION: "GDPR art. 6(1)(c)",
    ActivityBasis.VITAL_INTERESTS: "GDPR art. 6(1)(d)",
    ActivityBasis.PUBLIC_TASK: "GDPR art. 6(1)(e)",
    ActivityBasis.LEGITIMATE_INTEREST: "GDPR art. 6(1)(f)",
}

NO_SAFEGUARD = "none recorded"


@dataclass(frozen=True)
class RopaTransfer:
    to: str
    kind: str  # "system" or "recipient"
    country: str
    safeguards: str


@dataclass(frozen=True)
class RopaEntry:
    code: str
    name: str
    purpose: str
    legal_basis: str
    legal_basis_text: str
    consent_purpose: str
    data_subjects: str
    data_categories: list[str]
    systems: list[str]
    recipients: list[str]
    transfers: list[RopaTransfer]
    retention: list[str]
    # Where `retention` comes from: "policies" (the linked retention policies),
    # "systems" (none linked: what the linked systems state), or "none".
    retention_source: str
    security: list[str]
    owner: str
    reviewed_at: date | None
    reviewed_by: str
    review_due: bool

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reviewed_at"] = self.reviewed_at.isoformat() if self.reviewed_at else None
        return data


def activity_list() -> QuerySet[ProcessingActivity]:
    """Every processing activity, with what it links to (a fixed number of queries)."""
    return ProcessingActivity.objects.select_related(
        "consent_purpose", "reviewed_by"
    ).prefetch_related("systems", "recipients", "retention_policies")


def activity_get(*, code: str) -> ProcessingActivity | None:
    return activity_list().filter(code=code).first()


def review_due(reviewed_at: date | None, *, today: date | None = None) -> bool:
    """Never reviewed, or last reviewed more than a year ago."""
    today = today or timezone.localdate()
    return reviewed_at is None or reviewed_at < today - timedelta(days=REVIEW_DAYS)


def activity_review_counts(*, today: date | None = None) -> dict[str, int]:
    """Activities whose review is due, in one query: `never` reviewed, and `stale`
    (last reviewed more than REVIEW_DAYS ago)."""
    today = today or timezone.localdate()
    cutoff = today - timedelta(days=REVIEW_DAYS)
    return ProcessingActivity.objects.aggregate(
        never=Count("pk", filter=Q(reviewed_at__isnull=True)),
        stale=Count("pk", filter=Q(reviewed_at__lt=cutoff)),
    )


def _basis_text(basis: str) -> str:
    label = ActivityBasis(basis).label if basis in ActivityBasis.values else basis
    article = BASIS_ARTICLES.get(basis)
    return f"{label} ({article})" if article else str(label)


def _retention(activity: ProcessingActivity) -> list[str]:
    lines = []
    for policy in sorted(activity.retention_policies.all(), key=lambda p: p.code):
        line = (
            f"{policy.code}: {policy.period_text} from "
            f"{policy.get_trigger_display().lower()}, then "
            f"{policy.get_action_display().lower()}"
        )
        lines.append(line if policy.enabled else f"{line} (disabled)")
    return lines


def _retention_of(
    activity: ProcessingActivity, systems: list[Any]
) -> tuple[list[str], str]:
    """The retention periods: the linked policies'; with none linked, what the
    linked systems state (their inventory entry), said to be that."""
    lines = _retention(activity)
    if lines:
        return lines, "policies"
    if systems:
        return [f"{s.name}: {s.retention}" for s in systems], "systems"
    return [], "none"


def _entry(activity: ProcessingActivity, *, home: str, today: date) -> RopaEntry:
    systems = sorted(activity.systems.all(), key=lambda s: s.name)
    recipients = sorted(activity.recipients.all(), key=lambda r: r.name)
    transfers = [
        RopaTransfer(s.name, "system", s.country, NO_SAFEGUARD)
        for s in systems
        if s.country != home
    ] + [
        RopaTransfer(r.name, "recipient", r.country, r.safeguards or NO_SAFEGUARD)
        for r in recipients
        if r.country != home
    ]
    retention, retention_source = _retention_of(activity, systems)
    categories = [
        str(DataCategory(c).label) if c in DataCategory.values else c
        for c in activity.data_categories
    ]
    return RopaEntry(
        code=activity.code,
        name=activity.name,
        purpose=activity.purpose,
        legal_basis=activity.legal_basis,
        legal_basis_text=_basis_text(activity.legal_basis),
        consent_purpose=(
            activity.consent_purpose.code if activity.consent_purpose else ""
        ),
        data_subjects=activity.data_subjects,
        data_categories=categories,
        systems=[f"{s.name} ({s.country})" for s in systems],
        recipients=[f"{r.name} ({r.country}): {r.purpose}" for r in recipients],
        transfers=transfers,
        retention=retention,
        retention_source=retention_source,
        security=[f"{s.name}: {s.security}" for s in systems],
        owner=activity.owner,
        reviewed_at=activity.reviewed_at,
        reviewed_by=activity.reviewed_by.username if activity.reviewed_by else "",
        review_due=review_due(activity.reviewed_at, today=today),
    )


def ropa_get(*, today: date | None = None) -> list[RopaEntry]:
    """The record, one entry per activity, by name."""
    home = settings.AMANAH_CONTROLLER_COUNTRY
    today = today or timezone.localdate()
    return [_entry(a, home=home, today=today) for a in activity_list()]


def ropa_json(entries: list[RopaEntry]) -> dict[str, Any]:
    return {
        "controller_country": settings.AMANAH_CONTROLLER_COUNTRY,
        "activities": [e.as_dict() for e in entries],
    }


CSV_COLUMNS = [
    "code",
    "name",
    "purpose",
    "legal_basis",
    "consent_purpose",
    "data_subjects",
    "data_categories",
    "systems",
    "recipients",
    "transfers",
    "retention",
    "retention_source",
    "security",
    "owner",
    "reviewed_at",
    "reviewed_by",
    "review_due",
]


def _transfer_text(t: RopaTransfer) -> str:
    return f"{t.to} ({t.kind}, {t.country}): {t.safeguards}"


def _cell(text: str) -> str:
    # A cell a spreadsheet would run as a formula is read as text (OWASP's CSV
    # injection list: = + - @ and a leading tab or carriage return).
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def ropa_csv(entries: list[RopaEntry]) -> str:
    """One row per activity; lists joined with "; "."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        row = [
            e.code,
            e.name,
            e.purpose,
            e.legal_basis_text,
            e.consent_purpose,
            e.data_subjects,
            "; ".join(e.data_categories),
            "; ".join(e.systems),
            "; ".join(e.recipients),
            "; ".join(_transfer_text(t) for t in e.transfers),
            "; ".join(e.retention),
            e.retention_source,
            "; ".join(e.security),
            e.owner,
            e.reviewed_at.isoformat() if e.reviewed_at else "",
            e.reviewed_by,
            "yes" if e.review_due else "no",
        ]
        writer.writerow([_cell(str(v)) for v in row])
    return buffer.getvalue()
