"""Reads of incidents: the register, affected counts, deadlines, progress, status."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.db.models import Count, Min, Q, QuerySet
from django.utils import timezone

from apps.core.errors import NotFound
from apps.core.etags import etag_of
from apps.incidents.deadlines import affected_in, due_at, holiday_country
from apps.incidents.models import (
    PENDING_STATUSES,
    AffectedCustomer,
    DeadlineRule,
    DeliveryStatus,
    Incident,
    IncidentNotice,
    IncidentStatus,
    PublicHoliday,
    RiskLevel,
    StatusComponent,
    StatusUpdate,
)


def incident_list() -> QuerySet[Incident]:
    return Incident.objects.order_by("-aware_at")


def incident_get(*, incident_id: UUID | str) -> Incident:
    try:
        return Incident.objects.get(pk=incident_id)
    except (Incident.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such incident.") from None


def incident_etag(incident: Incident) -> str:
    """The incident's version (an ETag): every save of the row moves `updated_at`
    (auto_now; no write of an incident goes around `save`)."""
    return etag_of("incident", incident.pk, incident.updated_at)


def affected_counts(*, incident: Incident) -> dict[tuple[str, str], int]:
    """Affected people per (country, region): one grouped query. Customers erased
    before any notice are not affected (see `affected_erased_count`)."""
    rows = (
        AffectedCustomer.objects.filter(incident=incident, erased_before_notice=False)
        .values_list("country", "region")
        .annotate(n=Count("pk"))
    )
    return {(country, region): n for country, region, n in rows}


def affected_erased_count(*, incident: Incident) -> int:
    """Customers the selection matched who were erased before any notice: counted
    apart, never told."""
    return AffectedCustomer.objects.filter(
        incident=incident, erased_before_notice=True
    ).count()


@dataclass(frozen=True)
class Deadline:
    rule_code: str
    regime: str
    jurisdiction: str
    audience: str
    due_at: datetime | None
    affected: int
    legal_source: str
    note: str
    exempt: bool = False

    @property
    def missed(self) -> bool:
        return self.due_at is not None and self.due_at <= timezone.now()

    @property
    def seconds_left(self) -> float | None:
        return (
            None
            if self.due_at is None
            else (self.due_at - timezone.now()).total_seconds()
        )


def deadlines_for(*, incident: Incident) -> list[Deadline]:
    """Every deadline that applies to a breach, earliest first. A closed incident shows
    the deadlines recorded when it closed, whatever the rules say now."""
    if not incident.is_breach:
        return []
    if incident.is_closed:
        return [
            Deadline(
                d.rule_code,
                d.regime,
                d.jurisdiction,
                d.audience,
                d.due_at,
                d.affected,
                d.legal_source,
                "recorded when the incident closed",
            )
            for d in incident.deadlines.all()
        ]
    return deadlines_compute(
        incident=incident, counts=affected_counts(incident=incident)
    )


def deadlines_compute(
    *, incident: Incident, counts: dict[tuple[str, str], int]
) -> list[Deadline]:
    holidays: dict[str, list] = {}
    for row in PublicHoliday.objects.values_list("country", "date"):
        holidays.setdefault(row[0], []).append(row[1])
    result = []
    for rule in DeadlineRule.objects.filter(active=True):
        affected = affected_in(rule.jurisdiction, counts)
        if affected < max(rule.min_affected, 1):
            continue
        if rule.high_risk_only and incident.risk_level not in (RiskLevel.HIGH,):
            continue
        exempt = rule.encryption_exempt and incident.encrypted_keys_safe
        start = (
            incident.assessed_at
            if rule.clock_start == "assessed"
            else incident.aware_at
        )
        note = rule.notes
        due = None
        if start is None:
            note = "the clock starts when the assessment is finished"
        else:
            due = due_at(
                start=start,
                duration=rule.duration,
                unit=rule.unit,
                jurisdiction=rule.jurisdiction,
                holidays=holidays.get(holiday_country(rule.jurisdiction), ()),
            )
            if rule.duration is None:
                note = note or "without undue delay"
        if exempt:
            note = "not owed: the data was encrypted and the keys were not taken"
        result.append(
            Deadline(
                rule.code,
                rule.regime,
                rule.jurisdiction,
                rule.audience,
                due,
                affected,
                rule.legal_source,
                note,
                exempt,
            )
        )
    far = datetime.max.replace(tzinfo=UTC)
    return sorted(result, key=lambda d: (d.exempt, d.due_at or far, d.rule_code))


PROGRESS_STATUSES = (
    DeliveryStatus.QUEUED,
    DeliveryStatus.RETRYING,
    DeliveryStatus.SENDING,
    DeliveryStatus.SENT,
    DeliveryStatus.FAILED,
)


def notification_progress(*, incident: Incident) -> dict[str, Any]:
    """Notices per status (queued, retrying, sending, sent, failed: always all five)
    and per channel; why the failed ones failed, as reason categories with counts;
    when the next retry is due; and how many customers were erased before any
    notice."""
    rows = (
        IncidentNotice.objects.filter(incident=incident)
        .values_list("channel", "status")
        .annotate(n=Count("pk"))
    )
    by_status: dict[str, int] = dict.fromkeys(PROGRESS_STATUSES, 0)
    by_channel: dict[str, dict[str, int]] = {}
    for channel_name, status, n in rows:
        by_status[status] = by_status.get(status, 0) + n
        by_channel.setdefault(channel_name, {})[status] = n
    reasons = (
        IncidentNotice.objects.filter(incident=incident, status=DeliveryStatus.FAILED)
        .values_list("error")
        .annotate(n=Count("pk"))
        .order_by("-n", "error")
    )
    return {
        "total": sum(by_status.values()),
        "by_status": {str(status): n for status, n in by_status.items()},
        "by_channel": by_channel,
        "reasons": {error or "unknown": n for error, n in reasons},
        "next_attempt_at": notices_next_attempt_at(incident_id=incident.pk),
        "erased_before_notice": affected_erased_count(incident=incident),
    }


def notices_due(*, now: datetime) -> QuerySet[IncidentNotice]:
    """Notices to try now, of every incident: queued ones, and retries whose time has
    come. Sent and failed ones are final and never in it."""
    return IncidentNotice.objects.filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        status__in=PENDING_STATUSES,
        sent_at__isnull=True,
    )


def notices_due_incident_ids(*, now: datetime | None = None) -> list[UUID]:
    """Incidents with a notice to try now (what the beat job resumes)."""
    return list(
        notices_due(now=now or timezone.now())
        .order_by()
        .values_list("incident_id", flat=True)
        .distinct()
    )


def notices_next_attempt_at(*, incident_id: UUID | str) -> datetime | None:
    """When the earliest notice waiting for a retry is due, if any."""
    return IncidentNotice.objects.filter(
        incident_id=incident_id, status=DeliveryStatus.RETRYING
    ).aggregate(at=Min("next_attempt_at"))["at"]


def notices_for_customer(*, customer_id: UUID) -> QuerySet[IncidentNotice]:
    """The notices sent to one customer (their "notices about your data")."""
    return (
        IncidentNotice.objects.filter(customer_id=customer_id, sent_at__isnull=False)
        .select_related("incident")
        .order_by("-sent_at")
    )


def remedy_offers_for_customer(*, customer_id: UUID) -> dict[UUID, AffectedCustomer]:
    """The remedies offered to one customer (a code to redeem), by incident id."""
    offers = AffectedCustomer.objects.filter(customer_id=customer_id).exclude(
        remedy_code=""
    )
    return {affected.incident_id: affected for affected in offers}


def status_components() -> QuerySet[StatusComponent]:
    return StatusComponent.objects.all()


def status_updates_published(*, limit: int = 50) -> QuerySet[StatusUpdate]:
    return (
        StatusUpdate.objects.filter(published_at__isnull=False)
        .select_related("incident")
        .prefetch_related("components")
        .order_by("-published_at")[:limit]
    )


def status_banner() -> StatusUpdate | None:
    """The latest published update of an incident that is not resolved, if any."""
    return (
        StatusUpdate.objects.filter(published_at__isnull=False)
        .exclude(incident__status=IncidentStatus.RESOLVED)
        .exclude(phase="resolved")
        .order_by("-published_at")
        .first()
    )
