"""Writes for incidents: the register, affected customers, notices and their delivery,
remedies and the public status page. Every change is audited.

Lock order (apps/core/db.py): the incident, then its notices (each claimed on its own
in a short transaction), then the audit chain. Queueing the notices takes the
incident's session-level advisory lock (`incidents.notices_queue:<id>`) before all of
these and holds it across its batches' transactions.
"""

import hashlib
import json
import logging
import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from apps.accounts.models import User
from apps.audit import services as audit
from apps.core.db import (
    advisory_session_lock,
    advisory_session_lock_free,
    bulk_insert,
    server_cursor,
)
from apps.core.etags import etag_check
from apps.core.i18n import language_choose, language_is_known
from apps.core.reasons import reason_require
from apps.crypto.keys import data_keys_preload, key_scope
from apps.customers.models import Customer
from apps.customers.registry import DataCategory
from apps.customers.selectors import (
    customer_categories_held,
    customer_language,
    customer_queryset,
    customers_created_between,
    customers_in_places,
)
from apps.customers.services import free_text_check
from apps.incidents import notices
from apps.incidents.channels import DeliveryDeferred, DeliveryFailed, channel
from apps.incidents.errors import IncidentConflict, IncidentError, NoticeIncomplete
from apps.incidents.models import (
    STATUS_ORDER,
    AffectedCustomer,
    Audience,
    AuthorityReport,
    Channel,
    DeadlineNotification,
    DeliveryStatus,
    Incident,
    IncidentNotice,
    IncidentStatus,
    IncidentText,
    NoticeWording,
    RecordedDeadline,
    StatusComponent,
    StatusUpdate,
    StatusUpdateText,
    TimelineEntry,
)
from apps.incidents.reports import authority_report_get, report_headings
from apps.incidents.selectors import (
    Deadline,
    deadlines_for,
    incident_erasure_cutoff,
    incident_etag,
    notices_due,
    notices_due_incident_ids,
    notices_next_attempt_at,
)

logger = logging.getLogger(__name__)

EDITABLE = (
    "title",
    "kind",
    "severity",
    "occurred_at",
    "detected_at",
    "aware_at",
    "assessed_at",
    "data_categories",
    "systems",
    "risk_level",
    "encrypted_keys_safe",
    "risk_reasoning",
    "what_happened",
    "what_we_are_doing",
    "what_you_can_do",
    "contact",
    "remedy_kind",
    "remedy_description",
)


def _check_times(incident: Incident) -> None:
    if (
        incident.aware_at
        and incident.detected_at
        and incident.aware_at < incident.detected_at
    ):
        raise IncidentError(
            "Becoming aware cannot come before detection.", field="aware_at"
        )
    if (
        incident.occurred_at
        and incident.detected_at
        and (incident.occurred_at > incident.detected_at)
    ):
        raise IncidentError(
            "It cannot occur after it was detected.", field="occurred_at"
        )
    unknown = set(incident.data_categories or []) - set(DataCategory.values)
    if unknown:
        raise IncidentError("Unknown data category.", field="data_categories")


@transaction.atomic
def incident_create(*, actor: User, data: dict[str, Any]) -> Incident:
    """Register an incident. Raises IncidentError."""
    incident = Incident(created_by=actor)
    for name in EDITABLE:
        if name in data:
            setattr(incident, name, data[name])
    _check_times(incident)
    incident.save()
    audit.record(
        actor=actor,
        action="incident.created",
        target=incident,
        details={"kind": incident.kind, "severity": incident.severity},
    )
    return incident


def _queueing_key(incident: Incident) -> str:
    return f"incidents.notices_queue:{incident.pk}"


def _queueing_refuse(incident: Incident) -> None:
    """What customers are told cannot change while their notices are being queued
    (`notices_queue`, batch after batch): one run tells everyone the same. Called
    under the incident's row lock, which a run's batch takes first: a run that starts
    after this check queues nothing before the change commits."""
    if not advisory_session_lock_free(_queueing_key(incident)):
        raise IncidentConflict(
            "Notices are being queued for this incident: change it once they are "
            "queued.",
            code="queueing",
        )


@transaction.atomic
def incident_update(
    *,
    actor: User,
    incident: Incident,
    data: dict[str, Any],
    if_match: str | None = None,
) -> Incident:
    """Change fields of an open incident; audited with the names of what changed.
    With `if_match`, only if it still names the incident's version
    (`incident_etag`). Raises IncidentError, PreconditionFailed, IncidentConflict
    (`queueing`) while its notices are being queued."""
    incident = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
    if if_match is not None:
        # Under the row lock: of two changes sent with one version, one is refused.
        etag_check(if_match=if_match, current=incident_etag(incident))
    _queueing_refuse(incident)
    if incident.is_closed:
        raise IncidentError(
            "A resolved incident is part of the record: it cannot change."
        )
    changed = []
    for name in EDITABLE:
        if name in data and getattr(incident, name) != data[name]:
            setattr(incident, name, data[name])
            changed.append(name)
    _check_times(incident)
    incident.save()
    if changed:
        audit.record(
            actor=actor,
            action="incident.updated",
            target=incident,
            details={"fields": changed},
        )
    return incident


@transaction.atomic
def incident_transition(
    *, actor: User, incident: Incident, status: str, note: str = ""
) -> Incident:
    """Move an incident forward (investigating → ... → resolved). Resolving records the
    deadlines as they stand, so later edits to the rules never move them."""
    incident = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
    if status not in STATUS_ORDER:
        raise IncidentError("Unknown status.", field="status")
    if STATUS_ORDER.index(status) <= STATUS_ORDER.index(incident.status):
        raise IncidentError("An incident only moves forward.", field="status")
    now = timezone.now()
    if status == IncidentStatus.RESOLVED:
        for deadline in deadlines_for(incident=incident):
            RecordedDeadline.objects.create(
                incident=incident,
                rule_code=deadline.rule_code,
                regime=deadline.regime,
                jurisdiction=deadline.jurisdiction,
                audience=deadline.audience,
                due_at=deadline.due_at,
                affected=deadline.affected,
                legal_source=deadline.legal_source,
            )
        incident.resolved_at = now
    if status != IncidentStatus.INVESTIGATING and incident.contained_at is None:
        incident.contained_at = now
    previous, incident.status = incident.status, status
    incident.save()
    TimelineEntry.objects.create(
        incident=incident,
        at=now,
        author=actor,
        text=f"Status: {previous} → {status}." + (f" {note}" if note else ""),
    )
    audit.record(
        actor=actor,
        action="incident.status_changed",
        target=incident,
        details={"from": previous, "to": status},
    )
    return incident


@transaction.atomic
def timeline_add(
    *, actor: User, incident: Incident, text: str, at: datetime | None = None
) -> TimelineEntry:
    text = (text or "").strip()
    if not text:
        raise IncidentError("Say what was done.", field="text")
    entry = TimelineEntry.objects.create(
        incident=incident, at=at or timezone.now(), author=actor, text=text
    )
    audit.record(actor=actor, action="incident.timeline_added", target=incident)
    return entry


TEXT_FIELDS = (
    "what_happened",
    "what_we_are_doing",
    "what_you_can_do",
    "contact",
    "remedy_description",
)


def _language_check(language: str, *, field: str = "language") -> None:
    """A language staff may add a version in: one of settings.LANGUAGES other than
    the source (whose version is the incident's own fields)."""
    if not language_is_known(language, source=False):
        raise IncidentError("Not a language Amanah offers.", field=field)


@transaction.atomic
def incident_text_save(
    *,
    actor: User,
    incident: Incident,
    language: str,
    data: dict[str, str],
    create: bool,
) -> IncidentText:
    """Add (`create`) or change the version of what customers are told in one more
    language. Every required element of a notice is required here too, so a language
    version is either whole or absent. Raises IncidentError (a field at fault; a
    second version in one language is `duplicate`; IncidentConflict `queueing` while
    its notices are being queued)."""
    incident = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
    _queueing_refuse(incident)
    if incident.is_closed:
        raise IncidentError(
            "A resolved incident is part of the record: it cannot change."
        )
    _language_check(language)
    values = {name: (data.get(name) or "").strip() for name in TEXT_FIELDS}
    notices.validate(values)
    existing = IncidentText.objects.filter(incident=incident, language=language)
    text = existing.first()
    if create and text is not None:
        raise IncidentError(
            "There is a version in this language already: change that one.",
            field="language",
            code="duplicate",
        )
    if not create and text is None:
        raise IncidentError("There is no version in this language.", field="language")
    text = text or IncidentText(incident=incident, language=language)
    for name, value in values.items():
        setattr(text, name, value)
    text.save()
    audit.record(
        actor=actor,
        action="incident.text_saved",
        target=incident,
        details={"language": language, "created": create},
    )
    return text


# Notifications made ------------------------------------------------------------------


def _deadline_of(incident: Incident, rule_code: str) -> Deadline:
    deadline = next(
        (d for d in deadlines_for(incident=incident) if d.rule_code == rule_code),
        None,
    )
    if deadline is None:
        raise IncidentError("Not a deadline of this incident.", field="rule")
    return deadline


@transaction.atomic
def deadline_notified_record(
    *,
    actor: User,
    incident: Incident,
    rule_code: str,
    audience: str,
    notified_at: datetime,
    recipient: str,
    reference: str = "",
) -> DeadlineNotification:
    """Record that the body one of the incident's deadlines names was told: when,
    whom, under which reference. Once per deadline, never on a resolved incident.
    Raises IncidentError (a field at fault), IncidentConflict."""
    incident = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
    if incident.is_closed:
        raise IncidentConflict(
            "A resolved incident is part of the record: it cannot change.",
            code="incident_resolved",
        )
    deadline = _deadline_of(incident, rule_code)
    if audience != deadline.audience:
        raise IncidentError(
            f"This deadline is owed to: {deadline.audience}.", field="audience"
        )
    if notified_at > timezone.now():
        raise IncidentError("It cannot be in the future.", field="notified_at")
    if notified_at < incident.aware_at:
        raise IncidentError(
            "It cannot come before we became aware.", field="notified_at"
        )
    recipient = (recipient or "").strip()
    if not recipient:
        raise IncidentError("Say whom you notified.", field="recipient")
    if DeadlineNotification.objects.filter(
        incident=incident, rule_code=rule_code
    ).exists():
        raise IncidentConflict(
            "This deadline's notification is already recorded.",
            field="rule",
            code="already_notified",
        )
    record = DeadlineNotification.objects.create(
        incident=incident,
        rule_code=rule_code,
        audience=audience,
        notified_at=notified_at,
        recipient=recipient,
        reference=(reference or "").strip(),
        recorded_by=actor,
    )
    audit.record(
        actor=actor,
        action="incident.notified",
        target=incident,
        details={
            "rule": rule_code,
            "audience": audience,
            "late": deadline.due_at is not None and notified_at > deadline.due_at,
        },
    )
    return record


def _report_for_update(
    *, actor: User, incident: Incident, rule_code: str
) -> AuthorityReport:
    if incident.is_closed:
        raise IncidentConflict(
            "A resolved incident is part of the record: it cannot change.",
            code="incident_resolved",
        )
    current = authority_report_get(incident=incident, rule_code=rule_code)
    report, _ = AuthorityReport.objects.select_for_update().get_or_create(
        incident=incident,
        rule_code=rule_code,
        defaults={
            "updated_by": actor,
            "sections": {key: text for key, _, text in current.sections},
        },
    )
    if report.sent_at is not None:
        raise IncidentConflict(
            "The report was sent: it cannot change.", code="report_sent"
        )
    return report


@transaction.atomic
def authority_report_save(
    *, actor: User, incident: Incident, rule_code: str, sections: dict[str, str]
) -> AuthorityReport:
    """Keep the officer's text of an authority report (its headings only) until it
    is sent. Raises IncidentError, IncidentConflict (sent, or incident resolved)."""
    incident = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
    report = _report_for_update(actor=actor, incident=incident, rule_code=rule_code)
    keys = [h.key for h in report_headings(rule_code)[1]]
    report.sections = {key: (sections.get(key) or "").strip() for key in keys}
    report.updated_by = actor
    report.save()
    audit.record(
        actor=actor,
        action="incident.report_saved",
        target=incident,
        details={"rule": rule_code, "report": report.pk},
    )
    return report


@transaction.atomic
def authority_report_send(
    *,
    actor: User,
    incident: Incident,
    rule_code: str,
    notified_at: datetime,
    recipient: str,
    reference: str = "",
    sections: dict[str, str] | None = None,
) -> AuthorityReport:
    """Mark the report sent: its text (`sections`, when given, saved first) is
    frozen, and the authority's notification is recorded with the report (its number
    and a digest of its text) as reference. All in one transaction: when the
    notification is refused nothing is saved or audited. Raises IncidentError,
    IncidentConflict."""
    incident = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
    if sections is not None:
        authority_report_save(
            actor=actor, incident=incident, rule_code=rule_code, sections=sections
        )
    report = _report_for_update(actor=actor, incident=incident, rule_code=rule_code)
    digest = hashlib.sha256(
        json.dumps(report.sections, sort_keys=True).encode()
    ).hexdigest()[:16]
    own = f"Amanah report {report.pk} (sha256 {digest})"
    reference = (reference or "").strip()
    report.notification = deadline_notified_record(
        actor=actor,
        incident=incident,
        rule_code=rule_code,
        audience=Audience.AUTHORITY,
        notified_at=notified_at,
        recipient=recipient,
        reference=f"{reference} · {own}"[:200] if reference else own,
    )
    report.sent_at = timezone.now()
    report.updated_by = actor
    report.save()
    audit.record(
        actor=actor,
        action="incident.report_sent",
        target=incident,
        details={"rule": rule_code, "report": report.pk, "sha256": digest},
    )
    return report


# Affected customers ------------------------------------------------------------------


def _parse_ids(text: str) -> list[uuid.UUID]:
    ids = []
    for token in text.replace(",", " ").split():
        try:
            ids.append(uuid.UUID(token))
        except ValueError:
            raise IncidentError(
                "The list holds something that is not a customer id.",
                field="customer_ids",
            ) from None
    return ids


@transaction.atomic
def affected_select(
    *,
    actor: User,
    incident: Incident,
    scope: str,
    countries: list[str] | None = None,
    regions: list[str] | None = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    customer_ids: str = "",
    mailbox_compromised: bool = False,
) -> int:
    """Snapshot who the incident affects: everyone, some countries or regions, those
    created in a window, or a list of ids. Replaces an earlier snapshot while no notice
    has gone out. Customers already erased are kept apart ("erased before notice",
    with when they were erased): never told; those erased before the incident
    occurred were never affected and are not counted, those erased since are.
    Returns how many are affected."""
    incident = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
    if IncidentNotice.objects.filter(incident=incident).exists():
        raise IncidentError("Notices have gone out: the affected list is fixed now.")
    customers = customer_queryset()
    if scope == "countries":
        if not (countries or regions):
            raise IncidentError(
                "Name at least one country or region.", field="countries"
            )
        customers = customers_in_places(
            countries=countries or [], regions=regions or []
        )
    elif scope == "window":
        if not (created_from and created_to) or created_from > created_to:
            raise IncidentError("Give a window: from, then to.", field="created_from")
        customers = customers_created_between(start=created_from, end=created_to)
    elif scope == "list":
        ids = _parse_ids(customer_ids)
        if not ids:
            raise IncidentError("Paste at least one customer id.", field="customer_ids")
        customers = customers.filter(pk__in=ids)
    elif scope != "all":
        raise IncidentError("Choose who is affected.", field="scope")
    AffectedCustomer.objects.filter(incident=incident).delete()
    rows = customers.values_list("pk", "country", "region", "erased_at").iterator(
        chunk_size=5000
    )
    cutoff = incident_erasure_cutoff(incident)
    batch, total, erased, erased_before = [], 0, 0, 0
    for customer_id, country, region, erased_at in rows:
        erased += erased_at is not None
        erased_before += erased_at is not None and erased_at < cutoff
        batch.append(
            AffectedCustomer(
                incident=incident,
                customer_id=customer_id,
                country=country,
                region=region,
                mailbox_compromised=mailbox_compromised,
                erased_before_notice=erased_at is not None,
                erased_at=erased_at,
            )
        )
        if len(batch) >= 5000:
            total += len(AffectedCustomer.objects.bulk_create(batch))
            batch = []
    total += len(AffectedCustomer.objects.bulk_create(batch)) - erased_before
    incident.selection = {
        "scope": scope,
        "countries": countries or [],
        "regions": regions or [],
        "created_from": created_from.isoformat() if created_from else "",
        "created_to": created_to.isoformat() if created_to else "",
        "listed": scope == "list",
        "mailbox_compromised": mailbox_compromised,
    }
    incident.save(update_fields=["selection", "updated_at"])
    audit.record(
        actor=actor,
        action="incident.affected_selected",
        target=incident,
        details={"scope": scope, "count": total, "erased_before_notice": erased},
    )
    return total


# Notices -----------------------------------------------------------------------------


def notice_texts(incident: Incident) -> dict[str, dict[str, str]]:
    """The staff-written texts of the notice in each language they are complete in:
    the incident's own fields (the source language) and its `IncidentText`s. Raises
    NoticeIncomplete (naming the source language's missing elements) when none is."""
    source = {
        "what_happened": incident.what_happened,
        "what_we_are_doing": incident.what_we_are_doing,
        "what_you_can_do": incident.what_you_can_do,
        "contact": incident.contact,
        "remedy_description": incident.remedy_description,
    }
    candidates = {settings.LANGUAGE_CODE: source}
    for text in IncidentText.objects.filter(incident=incident):
        candidates[text.language] = {
            name: getattr(text, name)
            for name in (*notices.ELEMENTS, "remedy_description")
        }
    complete = {}
    for language, elements in candidates.items():
        try:
            notices.validate(elements)
        except NoticeIncomplete:
            continue
        complete[language] = elements
    if not complete:
        notices.validate(source)  # raises, naming what the source lacks
    return complete


@dataclass
class _Queued:
    """What one batch of `notices_queue` did."""

    last: int | None  # the last affected row read; None: nothing was left
    queued: int = 0
    erased: int = 0


def notices_queue(*, actor: User, incident: Incident, batch_size: int = 2000) -> int:
    """Render and queue one notice per affected customer and channel (never email to
    a mailbox whose credentials were taken), each wholly in one language: the
    customer's (`customer_language`) when staff wrote it, else English. Idempotent:
    existing notices are kept, so a run stopped midway is finished by the next.
    A customer erased since the snapshot and not yet sent anything is set apart as
    "erased before notice" instead. Returns how many notices were queued. Raises
    NoticeIncomplete when a required element is missing, IncidentConflict
    (`queueing`) while another run queues this incident's notices.

    One transaction per batch of affected people (each its own audit event), so that
    memory and the longest transaction stay the same however many are affected; when
    called inside a transaction the batches are savepoints of it. Each batch locks
    the incident's row first: no snapshot replaced and no text edited under it; and
    between batches the incident and its texts refuse changes (`_queueing_refuse`),
    so everyone is told the same.
    """
    # One queueing at a time per incident (two clicks on "Queue and send" would give
    # two remedy codes): held across the batches' transactions.
    with advisory_session_lock(_queueing_key(incident)) as got:
        if not got:
            raise IncidentConflict(
                "Notices are being queued for this incident already: wait for it "
                "to finish.",
                code="queueing",
            )
        notice_texts(incident)  # NoticeIncomplete before anything is written
        # A run that finds no notice queued yet has none to look for in its batches:
        # each person is affected once, and this run alone queues (the lock).
        resumed = IncidentNotice.objects.filter(incident=incident).exists()
        queued = erased = batches = 0
        last = 0
        while True:
            with transaction.atomic():
                done = _notices_queue_batch(
                    actor=actor,
                    incident=incident,
                    after=last,
                    size=batch_size,
                    resumed=resumed,
                )
            queued, erased = queued + done.queued, erased + done.erased
            batches += bool(done.queued or done.erased)
            if done.last is None:
                break
            last = done.last
        if not batches:
            # Nothing left to queue: the request is on the record all the same.
            with transaction.atomic():
                audit.record(
                    actor=actor,
                    action="incident.notices_queued",
                    target=incident,
                    details={"count": 0, "erased_before_notice": 0},
                )
    return queued


def _notices_queue_batch(
    *, actor: User, incident: Incident, after: int, size: int, resumed: bool
) -> _Queued:
    """Queue the notices of the next `size` affected people after row `after`, in
    the caller's transaction; `resumed`: notices may be queued for them already
    (by a run stopped midway), to be kept: looked for per person, by probes of the
    unique index (`_queued_before`; a join to the incident's notices, which grow by
    millions during a large run and outrun the planner's statistics, read all of
    them per batch), and not at all on a first run."""
    incident = Incident.objects.select_for_update(no_key=True).get(pk=incident.pk)
    people = AffectedCustomer.objects.filter(
        incident=incident, erased_before_notice=False, pk__gt=after
    ).order_by("pk")
    fields = ("pk", "customer_id", "region", "mailbox_compromised", "remedy_code")
    found = _queued_before(incident) if resumed else {}
    selected = list(people.annotate(**found).values_list(*fields, *found)[:size])
    batch = [row[: len(fields)] for row in selected]
    if not batch:
        return _Queued(last=None)
    existing = {
        (row[1], name.removeprefix("queued_"))
        for row in selected
        for name, notice in zip(found, row[len(fields) :], strict=True)
        if notice is not None
    }
    # A short batch is the last: no transaction more to find nothing.
    last = batch[-1][0] if len(batch) == size else None
    texts = notice_texts(incident)
    when = timezone.localdate(incident.occurred_at or incident.detected_at)
    # The batch's customers, as a subquery: their ids never travel.
    ids = AffectedCustomer.objects.filter(
        incident=incident, pk__gt=after, pk__lte=batch[-1][0]
    ).values_list("customer_id", flat=True)
    # Erased customers, and those whose record is gone, are not in it.
    held = customer_categories_held(customer_ids=ids)
    # Their language (apps/customers/selectors.customer_language): only the plain
    # columns it reads, no data keys.
    languages = {
        customer.pk: customer_language(customer)
        for customer in customer_queryset()
        .filter(pk__in=ids, erased_at__isnull=True)
        .only("pk", "language", "country")
    }
    # Notices queued before the erasure stay: sending fails them with a reason.
    told = {customer_id for customer_id, _ in existing}
    set_apart = [
        pk
        for pk, customer_id, *_ in batch
        if customer_id not in held and customer_id not in told
    ]
    # One rendering per language, regime and categories, stored once
    # (`NoticeWording`): the same words for everyone who shares them, the remedy
    # code put in per person when read.
    renderings: dict[tuple, notices.Rendered] = {}
    told_now: list[tuple[Any, list[str], tuple, str]] = []
    remedies: list[tuple[int, str]] = []
    for pk, customer_id, region, mailbox_compromised, remedy_code in batch:
        if customer_id not in held:
            continue
        # Plain strings: an Enum would travel as its name in a binary array.
        channels = [
            Channel.IN_APP.value,
            (Channel.SMS if mailbox_compromised else Channel.EMAIL).value,
        ]
        channels = [c for c in channels if (customer_id, c) not in existing]
        if not channels:
            continue  # queued by an earlier run
        if incident.remedy_kind and not remedy_code:
            remedy_code = secrets.token_hex(6).upper()
            remedies.append((pk, remedy_code))
        # One language for the whole notice: the customer's if staff wrote it.
        language = language_choose(available=texts, wanted=[languages.get(customer_id)])
        regime = notices.regime_for(region)
        categories = tuple(
            c for c in incident.data_categories if c in held[customer_id]
        )
        key = (language, regime, categories)
        if key not in renderings:
            elements = texts[language]
            renderings[key] = notices.render(
                elements=elements,
                language=language,
                regime=regime,
                when=when,
                categories=[DataCategory(c) for c in categories],
                remedy=(
                    (
                        elements["remedy_description"]
                        or incident.get_remedy_kind_display(),
                        notices.CODE_MARK,
                    )
                    if incident.remedy_kind
                    else None
                ),
            )
        code = remedy_code if incident.remedy_kind else ""
        told_now.append((customer_id, channels, key, code))
    wording_ids = _wording_ids(incident, renderings)
    rows = [
        (customer_id, name, wording_ids[key], code)
        for customer_id, channels, key, code in told_now
        for name in channels
    ]
    _remedy_codes_save(remedies)
    erased = AffectedCustomer.objects.filter(pk__in=set_apart).update(
        erased_before_notice=True
    )
    bulk_insert(
        IncidentNotice,
        rows=rows,
        columns=("customer_id", "channel", "wording", "remedy_code"),
        constants={
            "incident": incident.pk,
            "status": DeliveryStatus.QUEUED.value,
            "queued_at": timezone.now(),
            "error": "",
        },
    )
    if rows or erased:
        audit.record(
            actor=actor,
            action="incident.notices_queued",
            target=incident,
            details={"count": len(rows), "erased_before_notice": erased},
        )
    return _Queued(last=last, queued=len(rows), erased=erased)


def _queued_before(incident: Incident) -> dict[str, Subquery]:
    """Annotations of an affected person, `queued_<channel>` for each channel: the
    id of their notice of `incident` on it, or None. Each is a scalar subquery in
    the select list, which PostgreSQL runs per row as a probe of the unique index
    (incident, customer, channel): never joined to all of the incident's notices,
    nor hashed from them (as it may an EXISTS), whatever its statistics say of
    their number."""
    return {
        f"queued_{name}": Subquery(
            IncidentNotice.objects.filter(
                incident=incident, customer_id=OuterRef("customer_id"), channel=name
            ).values("pk")[:1]
        )
        for name in Channel.values
    }


def _wording_ids(
    incident: Incident, renderings: dict[tuple, notices.Rendered]
) -> dict[tuple, int]:
    """The ids of the stored wordings with the words of `renderings`, by the same
    keys; those not stored yet are stored now. Two statements whatever their number."""
    if not renderings:
        return {}
    digests = {key: notices.wording_digest(r) for key, r in renderings.items()}
    NoticeWording.objects.bulk_create(
        [
            NoticeWording(
                incident=incident,
                digest=digests[key],
                language=r.language,
                subject=r.subject,
                body=r.body,
                sections=r.sections,
            )
            for key, r in renderings.items()
        ],
        ignore_conflicts=True,  # stored by an earlier batch or run
    )
    stored = dict(
        NoticeWording.objects.filter(
            incident=incident, digest__in=digests.values()
        ).values_list("digest", "pk")
    )
    return {key: stored[digest] for key, digest in digests.items()}


def _remedy_codes_save(codes: list[tuple[int, str]]) -> None:
    """Save each (affected row id, remedy code) in one statement."""
    if not codes:
        return
    if connection.vendor != "postgresql":
        AffectedCustomer.objects.bulk_update(
            [AffectedCustomer(pk=pk, remedy_code=code) for pk, code in codes],
            ["remedy_code"],
        )
        return
    ids, values = zip(*codes, strict=True)
    table = AffectedCustomer._meta.db_table
    with server_cursor() as cursor:
        cursor.execute(
            # Only the model's own table name is put in the text.
            f'UPDATE "{table}" a SET remedy_code = t.code '  # noqa: S608  # nosec B608
            "FROM unnest(%b::bigint[], %b::text[]) AS t(id, code) WHERE a.id = t.id",
            [list(ids), list(values)],
        )


def notices_send_batch(*, incident_id: Any, batch_size: int | None = None) -> int:
    """Try the next batch of notices due now: queued ones, and those whose retry time
    has come. Each notice is claimed (committed), then tried, then marked: other
    workers skip it, and a process that dies mid-send leaves a claim that fails with
    "outcome unknown" instead of a second send. Every attempt moves its notice on:
    sent, failed for good with its reason, or retrying later, so a caller looping
    until this returns 0 always stops. Returns how many were attempted."""
    batch_size = batch_size or settings.AMANAH_NOTICE_BATCH_SIZE
    notices_claims_expire()
    # Fixed for the batch: a notice deferred in it is not due again before the next.
    pending = notices_due(now=timezone.now()).filter(incident_id=incident_id)
    # Candidates only: each is claimed on its own below, skipping those another
    # worker took meanwhile.
    batch = list(pending.select_related("wording").order_by("pk")[:batch_size])
    if not batch:
        return 0
    outcomes: dict[str, int] = {}
    with key_scope():
        customers = {
            c.pk: c
            for c in customer_queryset().filter(pk__in={n.customer_id for n in batch})
        }
        data_keys_preload(c.data_key_id for c in customers.values())
        for candidate in batch:
            notice = _claim(pending, candidate.pk)
            if notice is None:
                continue  # sent meanwhile, or another worker has it
            notice.wording = candidate.wording  # stored once, never changed
            _deliver(notice, customers.get(notice.customer_id))
            notice.save(update_fields=["status", "sent_at", "next_attempt_at", "error"])
            outcomes[notice.status] = outcomes.get(notice.status, 0) + 1
    attempted = sum(outcomes.values())
    logger.info(
        "incidents.batch_sent",
        extra={"incident": str(incident_id), "count": attempted, **outcomes},
    )
    return attempted


def notices_wake_countdown(*, incident_id: Any) -> int | None:
    """Seconds until the earliest retry of the incident is due, for the one caller
    that books the wake-up (every worker whose batch found nothing due asks); None
    when nothing waits or another caller booked it. At most half the broker's
    visibility timeout: a delayed message waits unacknowledged in a worker, and Redis
    would hand a longer-waiting one to a second worker. One that comes early finds
    nothing due and books the next."""
    wake = notices_next_attempt_at(incident_id=incident_id)
    if wake is None:
        return None
    seconds = math.ceil((wake - timezone.now()).total_seconds())
    countdown = min(max(1, seconds), settings.AMANAH_BROKER_VISIBILITY_TIMEOUT // 2)
    key = f"incidents:notices_wake:{incident_id}:{wake.timestamp()}"
    return countdown if cache.add(key, 1, timeout=countdown) else None


def notices_resume() -> list[Any]:
    """Settle the claims no worker will finish, and return the incidents with notices
    due now (what the beat job sends)."""
    notices_claims_expire()
    return notices_due_incident_ids()


# The longest wait between two attempts, however many are allowed.
RETRY_WAIT_MAX = timedelta(days=1)
OUTCOME_UNKNOWN = "outcome unknown: the sending worker stopped"


def _claim(pending: QuerySet[IncidentNotice], pk: int) -> IncidentNotice | None:
    """Take one due notice to send, committed before the send: if the process dies
    while sending, the notice is not sent again (`notices_claims_expire`)."""
    with transaction.atomic():
        notice = (
            pending.select_for_update(no_key=True, skip_locked=True)
            .filter(pk=pk)
            .first()
        )
        if notice is None:
            return None
        notice.status, notice.claimed_at = DeliveryStatus.SENDING, timezone.now()
        notice.attempts += 1
        notice.save(update_fields=["status", "claimed_at", "attempts"])
    return notice


def notices_claims_expire(*, now: datetime | None = None) -> int:
    """Notices claimed longer ago than any send can take (the task time limit, and a
    minute) and never marked: the process sending them stopped, before or after the
    send. An email or SMS fails with that reason rather than risk telling a person
    twice; an in-app notice, which nothing outside saw, is queued again. Returns how
    many failed."""
    now = now or timezone.now()
    stale = IncidentNotice.objects.filter(
        status=DeliveryStatus.SENDING,
        claimed_at__lt=now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60),
    )
    stale.filter(channel=Channel.IN_APP).update(status=DeliveryStatus.QUEUED)
    count = stale.update(
        status=DeliveryStatus.FAILED, error=OUTCOME_UNKNOWN, next_attempt_at=None
    )
    if count:
        logger.warning("incidents.notice_outcome_unknown", extra={"count": count})
    return count


def _deliver(notice: IncidentNotice, customer: Customer | None) -> None:
    """Try one claimed notice once and record the outcome on it (the caller saves
    it)."""
    try:
        if customer is None or customer.is_erased:
            raise DeliveryFailed("customer erased")
        address = {"email": customer.email, "sms": customer.phone}.get(
            notice.channel
        ) or ""
        channel(notice.channel).send(notice=notice, address=address)
    except DeliveryFailed as exc:
        notice.status, notice.next_attempt_at = DeliveryStatus.FAILED, None
        notice.error = str(exc)[:200]
    except DeliveryDeferred as exc:
        _retry_later(notice, reason=str(exc))
    except DatabaseError:
        raise  # the transaction is broken: the task's own retry takes over
    except SoftTimeLimitExceeded:
        # The task is out of time: it stops here, and this notice's claim settles
        # as "outcome unknown" (the send may have got through).
        raise
    except OSError as exc:  # an adapter that let a connection error through
        _retry_later(notice, reason=f"channel unavailable ({type(exc).__name__})")
    except Exception as exc:
        # A bug in one adapter or record must not hold up every notice after it.
        logger.warning(
            "incidents.notice_error",
            extra={"notice": notice.pk, "error": type(exc).__name__},
        )
        _retry_later(notice, reason=f"unexpected error ({type(exc).__name__})")
    else:
        notice.status, notice.sent_at = DeliveryStatus.SENT, timezone.now()
        notice.next_attempt_at, notice.error = None, ""


def _retry_later(notice: IncidentNotice, *, reason: str) -> None:
    """Retry after a wait that doubles each time; failed for good once the attempts
    allowed are used up, with the last reason."""
    notice.error = reason[:200]
    if notice.attempts >= settings.AMANAH_NOTICE_MAX_ATTEMPTS:
        notice.status, notice.next_attempt_at = DeliveryStatus.FAILED, None
        return
    doublings = min(notice.attempts - 1, 20)  # past RETRY_WAIT_MAX anyway
    wait = timedelta(seconds=settings.AMANAH_NOTICE_RETRY_SECONDS * 2**doublings)
    notice.status = DeliveryStatus.RETRYING
    notice.next_attempt_at = timezone.now() + min(wait, RETRY_WAIT_MAX)


def incident_notify(*, actor: User, incident: Incident) -> int:
    """Queue every notice and hand the sending to Celery, in batches. Idempotent: a
    rerun queues only what is missing and sends only what is due. The queueing
    commits batch by batch (`notices_queue`); the send is booked once it is done."""
    from apps.incidents.tasks import notices_send_task

    count = notices_queue(actor=actor, incident=incident)
    # Robust: what the broker cannot take now, the beat job sends (it is due).
    transaction.on_commit(
        lambda: notices_send_task.delay(str(incident.pk)), robust=True
    )
    return count


def remedy_redeem(*, customer_id: Any, incident: Incident) -> None:
    updated = (
        AffectedCustomer.objects.filter(
            incident=incident,
            customer_id=customer_id,
            remedy_redeemed_at__isnull=True,
        )
        .exclude(remedy_code="")
        .update(remedy_redeemed_at=timezone.now())
    )
    if not updated:
        raise IncidentError("There is no unredeemed offer here.")


# Status page -------------------------------------------------------------------------

DATA_AT_RISK = frozenset(
    value for value, _ in StatusUpdate._meta.get_field("data_at_risk").choices or ()
)


@transaction.atomic
def status_publish(
    *,
    actor: User,
    incident: Incident,
    phase: str,
    message: str,
    data_at_risk: str,
    components: dict[int, str] | None = None,
    texts: dict[str, dict[str, str]] | None = None,
) -> StatusUpdate:
    """Publish a plain-language update on the public status page, and set the state of
    the components it names. Whether data is at risk is the officer's to say: there
    is no default. `message` is in the source language (under the incident's title);
    `texts` gives it in more languages, {language: {"title": ..., "message": ...}},
    each whole. Raises IncidentError."""
    if data_at_risk not in DATA_AT_RISK:
        raise IncidentError(
            "Say whether people's data is at risk.", field="data_at_risk"
        )
    message = reason_require(
        message,
        field="message",
        message="Write the update in a sentence or two.",
        error=IncidentError,
    )
    # Published to anyone on /status/ and on customers' pages: no personal data.
    free_text_check(text=message, field="message", error=IncidentError, label="update")
    versions = []
    for language, text in (texts or {}).items():
        _language_check(language, field=f"message_{language}")
        title = (text.get("title") or "").strip()
        translated = (text.get("message") or "").strip()
        if not (title and translated):
            raise IncidentError(
                "Give both the title and the message in this language.",
                field=f"message_{language}",
            )
        for name, value in (("title", title), ("message", translated)):
            free_text_check(
                text=value,
                field=f"{name}_{language}",
                error=IncidentError,
                label="update",
            )
        versions.append(
            StatusUpdateText(language=language, title=title, message=translated)
        )
    update = StatusUpdate.objects.create(
        incident=incident,
        phase=phase,
        message=message,
        data_at_risk=data_at_risk,
        published_at=timezone.now(),
    )
    for version in versions:
        version.update = update
    StatusUpdateText.objects.bulk_create(versions)
    for component_id, state in (components or {}).items():
        StatusComponent.objects.filter(pk=component_id).update(state=state)
        update.components.add(component_id)
    audit.record(
        actor=actor,
        action="status.published",
        target=incident,
        details={
            "phase": phase,
            "update": update.pk,
            "languages": [v.language for v in versions],
        },
    )
    return update
