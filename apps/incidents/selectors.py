"""Reads of incidents: the register, affected counts, deadlines, progress, status."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import formats, timezone, translation
from django.utils.translation import get_language, get_language_info

from apps.core.errors import NotFound
from apps.core.etags import etag_of
from apps.core.i18n import language_choose, language_is_rtl, texts_in_language
from apps.customers.selectors import customer_ids_erased
from apps.incidents.deadlines import affected_in, due_at, holiday_country
from apps.incidents.models import (
    PENDING_STATUSES,
    AffectedCustomer,
    Audience,
    AuthorityReport,
    DeadlineNotification,
    DeadlineRule,
    DeliveryStatus,
    Incident,
    IncidentNotice,
    IncidentStatus,
    IncidentText,
    PublicHoliday,
    RiskLevel,
    StatusComponent,
    StatusUpdate,
)


def incident_list(*, open_only: bool = False) -> QuerySet[Incident]:
    """Every incident, latest first; `open_only`: all but the resolved ones."""
    incidents = Incident.objects.order_by("-aware_at")
    if open_only:
        incidents = incidents.exclude(status=IncidentStatus.RESOLVED)
    return incidents


def incident_get(*, incident_id: UUID | str) -> Incident:
    try:
        return Incident.objects.get(pk=incident_id)
    except (Incident.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such incident.") from None


def incident_text_list(*, incident: Incident) -> QuerySet[IncidentText]:
    """The incident's versions in languages other than the source (English, its own
    fields)."""
    return IncidentText.objects.filter(incident=incident)


def incident_text_get(*, incident: Incident, language: str) -> IncidentText:
    """The incident's version in `language`. Raises NotFound."""
    text = IncidentText.objects.filter(incident=incident, language=language).first()
    if text is None:
        raise NotFound("There is no version in this language.")
    return text


def incident_etag(incident: Incident) -> str:
    """The incident's version (an ETag): every save of the row moves `updated_at`
    (auto_now; no write of an incident goes around `save`)."""
    return etag_of("incident", incident.pk, incident.updated_at)


def _erased_before_incident(incidents: Iterable[Incident]) -> Q:
    """Rows of customers erased before their incident (its erasure cut-off): their
    data was gone, so they were not affected. An erasure after the snapshot comes
    after the incident too, so the snapshot's `erased_at` decides."""
    erased = Q(pk__in=[])
    for incident in incidents:
        erased |= Q(
            incident_id=incident.pk, erased_at__lt=incident_erasure_cutoff(incident)
        )
    return erased


def _on_record() -> Q:
    """Rows of people still on record: erased neither before the snapshot, nor before
    the notices were queued, nor since."""
    return Q(erased_before_notice=False, erased_at__isnull=True) & ~Q(
        customer_id__in=customer_ids_erased()
    )


def _affected_tallies(
    incidents: Sequence[Incident],
) -> tuple[dict[UUID, dict[tuple[str, str], int]], dict[UUID, int]]:
    """One grouped query: per incident, the affected per (country, region) (all but
    those erased before the incident: those erased since were affected too), and how
    many of them are still on record (not erased at all: the people to tell)."""
    rows = (
        AffectedCustomer.objects.filter(incident_id__in=[i.pk for i in incidents])
        .exclude(_erased_before_incident(incidents))
        .values_list("incident_id", "country", "region")
        .annotate(n=Count("pk"), on_record=Count("pk", filter=_on_record()))
    )
    counts: dict[UUID, dict[tuple[str, str], int]] = {}
    on_record: dict[UUID, int] = {}
    for incident_id, country, region, n, living in rows:
        counts.setdefault(incident_id, {})[(country, region)] = n
        on_record[incident_id] = on_record.get(incident_id, 0) + living
    return counts, on_record


def affected_counts(*, incident: Incident) -> dict[tuple[str, str], int]:
    """The people the incident affected, per (country, region): one grouped query.
    These decide the thresholds and deadlines. Everyone the selection matched but
    those erased before the incident (their data was gone): those erased since were
    affected, and count, though no one is left to tell them
    (`affected_erased_counts` gives both numbers)."""
    return _affected_tallies([incident])[0].get(incident.pk, {})


def incident_erasure_cutoff(incident: Incident) -> datetime:
    """Customers erased before this moment were gone before the incident: when it
    occurred, or, when that is not known, when it was detected (it cannot have
    occurred later)."""
    return incident.occurred_at or incident.detected_at


def affected_erased_counts(*, incident: Incident) -> dict[str, int]:
    """Customers the selection matched who are erased, in one query:
    `before_incident` (erased before it occurred: their data was gone, so not
    affected, not in `affected_counts`) and `since_incident` (their data was there:
    affected and in `affected_counts`, but no one is left to tell, so sent
    nothing)."""
    erased = Q(erased_before_notice=True) | Q(erased_at__isnull=False)
    erased |= Q(customer_id__in=customer_ids_erased())
    before = Q(erased_at__lt=incident_erasure_cutoff(incident))
    return AffectedCustomer.objects.filter(erased, incident=incident).aggregate(
        before_incident=Count("pk", filter=before),
        since_incident=Count("pk", filter=~before),
    )


def affected_erased_count(*, incident: Incident) -> int:
    """Customers the selection matched who were erased before any notice was queued:
    sent nothing (affected all the same when erased since the incident)."""
    return AffectedCustomer.objects.filter(
        incident=incident, erased_before_notice=True
    ).count()


OPEN, MET, MET_LATE = "open", "met", "met_late"
DEADLINE_STATUSES = (OPEN, MET, MET_LATE)


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
    # Who was told, when: a notification recorded by hand, or (people) the notices.
    notified_at: datetime | None = None
    recipient: str = ""
    reference: str = ""
    notified_by: str = ""  # "recorded" or "notices"
    # People's deadline: how many on record no notice reached, once none is pending.
    unreached: int = 0

    @property
    def status(self) -> str:
        """open until notified; then met, or met_late when told after it was due."""
        if self.notified_at is None:
            return OPEN
        if self.due_at is None or self.notified_at <= self.due_at:
            return MET
        return MET_LATE

    @property
    def status_label(self) -> str:
        return self.status.replace("_", " ")

    @property
    def missed(self) -> bool:
        """Overdue: still open and its time has passed. A met deadline never is."""
        return (
            self.status == OPEN
            and self.due_at is not None
            and self.due_at <= timezone.now()
        )

    @property
    def seconds_left(self) -> float | None:
        return (
            None
            if self.due_at is None
            else (self.due_at - timezone.now()).total_seconds()
        )

    @property
    def audience_label(self) -> str:
        return Audience(self.audience).label


def deadlines_for(*, incident: Incident) -> list[Deadline]:
    """Every deadline that applies to a breach, earliest first, each with its status.
    A closed incident shows the deadlines recorded when it closed, whatever the rules
    say now."""
    if not incident.is_breach:
        return []
    counts, on_record = _affected_tallies([incident])
    if incident.is_closed:
        deadlines = [
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
    else:
        deadlines = deadlines_compute(
            incident=incident, counts=counts.get(incident.pk, {})
        )
    return deadlines_with_notifications(
        deadlines,
        notified=list(DeadlineNotification.objects.filter(incident=incident)),
        notices=_notices_outcomes([incident.pk], on_record).get(incident.pk),
    )


@dataclass(frozen=True)
class NoticesOutcome:
    """An incident's notices once none is queued, retrying or sending: when the last
    one was sent (None if none was), and how many people still on record (not
    erased) were sent none, on any channel (their notices failed)."""

    last_sent_at: datetime | None
    unreached: int

    @property
    def told_everyone(self) -> bool:
        return self.last_sent_at is not None and self.unreached == 0


def deadlines_with_notifications(
    deadlines: list[Deadline],
    *,
    notified: Iterable[DeadlineNotification],
    notices: NoticesOutcome | None,
) -> list[Deadline]:
    """The deadlines with who was told and when: a notification recorded for the
    rule, or, for people, the notices once every one has finished and every person
    still on record was sent one. When some were not reached, the people's deadline
    stays open with their number: the officer records how they were told."""
    by_rule = {n.rule_code: n for n in notified}
    result = []
    for deadline in deadlines:
        record = by_rule.get(deadline.rule_code)
        if record is not None:
            deadline = replace(
                deadline,
                notified_at=record.notified_at,
                recipient=record.recipient,
                reference=record.reference,
                notified_by="recorded",
            )
        elif deadline.audience == Audience.INDIVIDUALS and notices is not None:
            if notices.told_everyone:
                deadline = replace(
                    deadline,
                    notified_at=notices.last_sent_at,
                    recipient="affected people, by the incident's notices",
                    notified_by="notices",
                )
            else:
                deadline = replace(deadline, unreached=notices.unreached)
        result.append(deadline)
    return result


def _holidays() -> dict[str, list[date]]:
    holidays: dict[str, list[date]] = {}
    for country, day in PublicHoliday.objects.values_list("country", "date"):
        holidays.setdefault(country, []).append(day)
    return holidays


def deadlines_compute(
    *,
    incident: Incident,
    counts: dict[tuple[str, str], int],
    holidays: dict[str, list[date]] | None = None,
    rules: Sequence[DeadlineRule] | None = None,
) -> list[Deadline]:
    """The deadlines the rules give an open incident with these counts (all open:
    see `deadlines_with_notifications`). `holidays` and `rules` may be read once for
    many incidents."""
    if holidays is None:
        holidays = _holidays()
    if rules is None:
        rules = list(DeadlineRule.objects.filter(active=True))
    result = []
    for rule in rules:
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


_NOT_FINISHED = (*PENDING_STATUSES, DeliveryStatus.SENDING)


def _notices_outcomes(
    incident_ids: Sequence[UUID], on_record: dict[UUID, int]
) -> dict[UUID, NoticesOutcome]:
    """One grouped query: the outcome of each incident's notices (see
    `NoticesOutcome`), for those with notices none of which is still to go.
    `on_record` is how many affected people each has still on record."""
    rows = (
        IncidentNotice.objects.filter(incident_id__in=incident_ids)
        .values("incident_id")
        .annotate(
            unfinished=Count("pk", filter=Q(status__in=_NOT_FINISHED)),
            last_sent=Max("sent_at", filter=Q(status=DeliveryStatus.SENT)),
            reached=Count(
                "customer_id",
                distinct=True,
                filter=Q(status=DeliveryStatus.SENT)
                & ~Q(customer_id__in=customer_ids_erased()),
            ),
        )
        .values_list("incident_id", "unfinished", "last_sent", "reached")
    )
    return {
        incident_id: NoticesOutcome(
            last_sent, max(on_record.get(incident_id, 0) - reached, 0)
        )
        for incident_id, unfinished, last_sent, reached in rows
        if not unfinished
    }


def incidents_open_nearest_deadline() -> list[tuple[Incident, Deadline | None]]:
    """Every incident not resolved, with its nearest deadline still open and owed
    (None if it has none), nearest first, those without one last. A fixed number of
    queries, however many incidents and rules: the incidents, the rules, the
    holidays, the affected counts, the notifications and the notices' progress."""
    incidents = list(
        Incident.objects.exclude(status=IncidentStatus.RESOLVED).order_by("aware_at")
    )
    breaches = [incident.pk for incident in incidents if incident.is_breach]
    nearest: dict[UUID, Deadline] = {}
    if breaches:
        holidays = _holidays()
        rules = list(DeadlineRule.objects.filter(active=True))
        counts, on_record = _affected_tallies(
            [incident for incident in incidents if incident.is_breach]
        )
        notified: dict[UUID, list[DeadlineNotification]] = {}
        for record in DeadlineNotification.objects.filter(incident_id__in=breaches):
            notified.setdefault(record.incident_id, []).append(record)
        outcomes = _notices_outcomes(breaches, on_record)
        for incident in incidents:
            if not incident.is_breach:
                continue
            deadlines = deadlines_with_notifications(
                deadlines_compute(
                    incident=incident,
                    counts=counts.get(incident.pk, {}),
                    holidays=holidays,
                    rules=rules,
                ),
                notified=notified.get(incident.pk, ()),
                notices=outcomes.get(incident.pk),
            )
            owed = [d for d in deadlines if d.status == OPEN and not d.exempt]
            if owed:  # already earliest first, undated ones last
                nearest[incident.pk] = owed[0]
    far = datetime.max.replace(tzinfo=UTC)
    result = [(incident, nearest.get(incident.pk)) for incident in incidents]
    result.sort(
        key=lambda pair: (
            pair[1] is None,
            (pair[1].due_at or far) if pair[1] else far,
        )
    )
    return result


def authority_report_find(
    *, incident: Incident, rule_code: str
) -> AuthorityReport | None:
    return AuthorityReport.objects.filter(
        incident=incident, rule_code=rule_code
    ).first()


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
        .select_related("incident", "wording")
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


@dataclass(frozen=True)
class ComponentShown:
    """A status page component as one visitor reads it: its name in their language
    if staff wrote it, else in English (`language` says which)."""

    component: StatusComponent
    name: str
    language: str

    @property
    def direction(self) -> str:
        return "rtl" if language_is_rtl(self.language) else "ltr"


def status_components_shown(*, language: str | None = None) -> list[ComponentShown]:
    """The components, each named in `language` (default: the active one) or, where
    staff did not write it, in English."""
    wanted = language or get_language() or settings.LANGUAGE_CODE
    shown = []
    for component in status_components():
        texts, chosen = texts_in_language(
            source={"name": component.name},
            translations=component.translations,
            language=wanted,
        )
        shown.append(ComponentShown(component, texts["name"], chosen))
    return shown


def status_updates_published(*, limit: int = 50) -> QuerySet[StatusUpdate]:
    return (
        StatusUpdate.objects.filter(published_at__isnull=False)
        .select_related("incident")
        .prefetch_related("components", "texts")
        .order_by("-published_at")[:limit]
    )


@dataclass(frozen=True)
class StatusUpdateShown:
    """A status update as one visitor reads it: wholly in one language (`language`),
    theirs when staff wrote it, else one whole other (`fallback`, named by
    `language_name` in the visitor's own)."""

    update: StatusUpdate
    language: str
    fallback: bool
    language_name: str
    title: str
    message: str
    phase_label: str
    data_at_risk_label: str
    published: str

    @property
    def direction(self) -> str:
        return "rtl" if language_is_rtl(self.language) else "ltr"


def status_update_shown(
    update: StatusUpdate, *, language: str | None = None
) -> StatusUpdateShown:
    """`update` in `language` (default: the active one) or, where staff did not write
    it, in one whole other language (`language_choose`): its texts, labels and date
    all in that one. Uses the prefetched `texts` when there."""
    try:
        wanted = translation.get_supported_language_variant(
            language or get_language() or settings.LANGUAGE_CODE
        )
    except LookupError:
        wanted = settings.LANGUAGE_CODE
    versions = {t.language: t for t in update.texts.all()}
    chosen = language_choose(
        available=[settings.LANGUAGE_CODE, *versions], wanted=[wanted]
    )
    version = versions.get(chosen)
    title = version.title if version else update.incident.title
    message = version.message if version else update.message
    name = str(get_language_info(chosen)["name_translated"])
    with translation.override(chosen):
        published = ""
        if update.published_at:
            published = formats.date_format(
                timezone.localtime(update.published_at), "DATETIME_FORMAT"
            )
        return StatusUpdateShown(
            update=update,
            language=chosen,
            fallback=chosen != wanted,
            language_name=name,
            title=title,
            message=message,
            phase_label=str(update.get_phase_display()),
            data_at_risk_label=str(update.get_data_at_risk_display()),
            published=published,
        )


def status_updates_shown(*, limit: int = 50) -> list[StatusUpdateShown]:
    """The published updates, each in the visitor's language or one whole other."""
    return [status_update_shown(u) for u in status_updates_published(limit=limit)]


def status_banner() -> StatusUpdateShown | None:
    """The latest published update of an incident that is not resolved, if any, in
    the active language (or one whole other)."""
    update = (
        StatusUpdate.objects.filter(published_at__isnull=False)
        .exclude(incident__status=IncidentStatus.RESOLVED)
        .exclude(phase="resolved")
        .select_related("incident")
        .prefetch_related("texts")
        .order_by("-published_at")
        .first()
    )
    return status_update_shown(update) if update is not None else None
