"""Writes for incidents: the register, affected customers, notices and their delivery,
remedies and the public status page. Every change is audited."""

import logging
import secrets
import uuid
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.crypto.keys import data_keys_preload, key_scope
from apps.customers.models import Customer
from apps.customers.registry import DataCategory, fields_in_category
from apps.incidents import notices
from apps.incidents.channels import DeliveryFailed, channel
from apps.incidents.errors import IncidentError
from apps.incidents.models import (
    STATUS_ORDER,
    AffectedCustomer,
    Channel,
    DeliveryStatus,
    Incident,
    IncidentNotice,
    IncidentStatus,
    RecordedDeadline,
    StatusComponent,
    StatusUpdate,
    TimelineEntry,
)
from apps.incidents.selectors import deadlines_for

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
def incident_create(*, actor, data: dict[str, Any]) -> Incident:
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


@transaction.atomic
def incident_update(*, actor, incident: Incident, data: dict[str, Any]) -> Incident:
    """Change fields of an open incident; audited with the names of what changed."""
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
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
    *, actor, incident: Incident, status: str, note: str = ""
) -> Incident:
    """Move an incident forward (investigating → ... → resolved). Resolving records the
    deadlines as they stand, so later edits to the rules never move them."""
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
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
def timeline_add(*, actor, incident: Incident, text: str, at: datetime | None = None):
    text = (text or "").strip()
    if not text:
        raise IncidentError("Say what was done.", field="text")
    entry = TimelineEntry.objects.create(
        incident=incident, at=at or timezone.now(), author=actor, text=text
    )
    audit.record(actor=actor, action="incident.timeline_added", target=incident)
    return entry


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
    actor,
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
    has gone out. Returns how many."""
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    if IncidentNotice.objects.filter(incident=incident).exists():
        raise IncidentError("Notices have gone out: the affected list is fixed now.")
    customers = Customer.objects.all()
    if scope == "countries":
        if not (countries or regions):
            raise IncidentError(
                "Name at least one country or region.", field="countries"
            )
        customers = customers.filter(country__in=countries or []) | customers.filter(
            region__in=regions or []
        )
    elif scope == "window":
        if not (created_from and created_to) or created_from > created_to:
            raise IncidentError("Give a window: from, then to.", field="created_from")
        customers = customers.filter(
            created_at__gte=created_from, created_at__lte=created_to
        )
    elif scope == "list":
        ids = _parse_ids(customer_ids)
        if not ids:
            raise IncidentError("Paste at least one customer id.", field="customer_ids")
        customers = customers.filter(pk__in=ids)
    elif scope != "all":
        raise IncidentError("Choose who is affected.", field="scope")
    AffectedCustomer.objects.filter(incident=incident).delete()
    rows = customers.values_list("pk", "country", "region").iterator(chunk_size=5000)
    batch, total = [], 0
    for customer_id, country, region in rows:
        batch.append(
            AffectedCustomer(
                incident=incident,
                customer_id=customer_id,
                country=country,
                region=region,
                mailbox_compromised=mailbox_compromised,
            )
        )
        if len(batch) >= 5000:
            total += len(AffectedCustomer.objects.bulk_create(batch))
            batch = []
    total += len(AffectedCustomer.objects.bulk_create(batch))
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
        details={"scope": scope, "count": total},
    )
    return total


# Notices -----------------------------------------------------------------------------


def notice_elements(incident: Incident, data_involved: str) -> dict[str, str]:
    when = (incident.occurred_at or incident.detected_at).strftime("%Y-%m-%d")
    return {
        "what_happened": incident.what_happened,
        "when": when,
        "data_involved": data_involved,
        "what_we_are_doing": incident.what_we_are_doing,
        "what_you_can_do": incident.what_you_can_do,
        "contact": incident.contact,
    }


def _categories_held(customer_ids: list) -> dict:
    """Which data categories each customer holds anything in (no decryption: a null
    check on the ciphertext columns)."""
    from django.db.models import BooleanField, ExpressionWrapper, Q

    annotations = {}
    for category in DataCategory.values:
        q = Q()
        for name in fields_in_category(category):
            q |= Q(**{f"{name}__isnull": False})
        annotations[f"has_{category}"] = ExpressionWrapper(
            q, output_field=BooleanField()
        )
    rows = (
        Customer.objects.filter(pk__in=customer_ids)
        .annotate(**annotations)
        .values("pk", *annotations)
    )
    return {
        row["pk"]: {c for c in DataCategory.values if row[f"has_{c}"]} for row in rows
    }


def notices_queue(*, actor, incident: Incident, batch_size: int = 2000) -> int:
    """Render and queue one notice per affected customer and channel (never email to
    a mailbox whose credentials were taken). Idempotent: existing notices are kept.
    Raises NoticeIncomplete when a required element is missing."""
    notices.validate(notice_elements(incident, "-"))
    if not incident.is_breach and not incident.what_happened:
        raise IncidentError("Say what happened.", field="what_happened")
    queued = 0
    affected = AffectedCustomer.objects.filter(incident=incident).order_by("pk")
    last = 0
    while True:
        batch = list(affected.filter(pk__gt=last)[:batch_size])
        if not batch:
            break
        last = batch[-1].pk
        held = _categories_held([a.customer_id for a in batch])
        now = timezone.now()
        rows, remedies = [], []
        for person in batch:
            categories = [
                c
                for c in incident.data_categories
                if c in held.get(person.customer_id, ())
            ]
            involved = ", ".join(DataCategory(c).label for c in categories) or (
                "None of your personal data was involved."
            )
            if incident.remedy_kind and not person.remedy_code:
                person.remedy_code = secrets.token_hex(6).upper()
                remedies.append(person)
            remedy = (
                (
                    incident.remedy_description or incident.get_remedy_kind_display(),
                    person.remedy_code,
                )
                if incident.remedy_kind
                else None
            )
            text = notices.render(
                elements=notice_elements(incident, involved),
                country=person.country,
                region=person.region,
                remedy=remedy,
            )
            channels = [Channel.IN_APP]
            channels.append(
                Channel.SMS if person.mailbox_compromised else Channel.EMAIL
            )
            for name in channels:
                rows.append(
                    IncidentNotice(
                        incident=incident,
                        customer_id=person.customer_id,
                        channel=name,
                        language=text.language,
                        subject=text.subject,
                        body=text.body,
                        queued_at=now,
                    )
                )
        with transaction.atomic():
            AffectedCustomer.objects.bulk_update(remedies, ["remedy_code"])
            created = IncidentNotice.objects.bulk_create(rows, ignore_conflicts=True)
        queued += len(created)
    audit.record(
        actor=actor,
        action="incident.notices_queued",
        target=incident,
        details={"count": queued},
    )
    return queued


def notices_send_batch(*, incident_id: Any, batch_size: int = 500) -> int:
    """Send the next batch of queued (or failed) notices. Each notice is claimed, sent
    and marked in its own short transaction, so a crash can repeat at most the one in
    flight, and a sent notice is never sent again; other workers skip locked rows.
    Returns how many were attempted."""
    pending = IncidentNotice.objects.filter(
        incident_id=incident_id,
        status__in=[DeliveryStatus.QUEUED, DeliveryStatus.FAILED],
        sent_at__isnull=True,
    )
    with transaction.atomic():
        batch = list(
            pending.select_for_update(skip_locked=True).order_by("pk")[:batch_size]
        )
    if not batch:
        return 0
    attempted = 0
    with key_scope():
        customers = {
            c.pk: c
            for c in Customer.objects.filter(pk__in={n.customer_id for n in batch})
        }
        data_keys_preload(c.data_key_id for c in customers.values())
        for candidate in batch:
            with transaction.atomic():
                notice = (
                    pending.select_for_update(skip_locked=True)
                    .filter(pk=candidate.pk)
                    .first()
                )
                if notice is None:
                    continue  # sent meanwhile, or another worker has it
                _deliver(notice, customers.get(notice.customer_id))
                notice.save(update_fields=["status", "sent_at", "error"])
                attempted += 1
    logger.info(
        "incidents.batch_sent", extra={"incident": str(incident_id), "count": attempted}
    )
    return attempted


def _deliver(notice: IncidentNotice, customer: Customer | None) -> None:
    address = ""
    if customer is not None and not customer.is_erased:
        address = {"email": customer.email, "sms": customer.phone}.get(
            notice.channel
        ) or ""
    try:
        channel(notice.channel).send(notice=notice, address=address)
    except DeliveryFailed as exc:
        notice.status, notice.error = DeliveryStatus.FAILED, str(exc)[:200]
    else:
        notice.status, notice.sent_at, notice.error = (
            DeliveryStatus.SENT,
            timezone.now(),
            "",
        )


@transaction.atomic
def incident_notify(*, actor, incident: Incident) -> int:
    """Queue every notice and hand the sending to Celery, in batches."""
    from apps.incidents.tasks import notices_send_task

    count = notices_queue(actor=actor, incident=incident)
    transaction.on_commit(lambda: notices_send_task.delay(str(incident.pk)))
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


@transaction.atomic
def status_publish(
    *,
    actor,
    incident: Incident,
    phase: str,
    message: str,
    data_at_risk: str = "unknown",
    components: dict[int, str] | None = None,
) -> StatusUpdate:
    """Publish a plain-language update on the public status page, and set the state of
    the components it names."""
    message = (message or "").strip()
    if len(message) < 10:
        raise IncidentError("Write the update in a sentence or two.", field="message")
    update = StatusUpdate.objects.create(
        incident=incident,
        phase=phase,
        message=message,
        data_at_risk=data_at_risk,
        published_at=timezone.now(),
    )
    for component_id, state in (components or {}).items():
        StatusComponent.objects.filter(pk=component_id).update(state=state)
        update.components.add(component_id)
    audit.record(
        actor=actor,
        action="status.published",
        target=incident,
        details={"phase": phase, "update": update.pk},
    )
    return update


def demo_incidents_ensure(*, actor) -> int:
    """An open suspected breach with its deadlines and a resolved outage on the status
    page, if the register is empty (seed_demo)."""
    from datetime import timedelta

    if Incident.objects.exists():
        return 0
    now = timezone.now()
    outage = incident_create(
        actor=actor,
        data={
            "title": "Checkout unavailable",
            "kind": "outage",
            "severity": "medium",
            "occurred_at": now - timedelta(days=14, hours=3),
            "detected_at": now - timedelta(days=14, hours=3),
            "aware_at": now - timedelta(days=14, hours=3),
        },
    )
    status_publish(
        actor=actor,
        incident=outage,
        phase="resolved",
        message="Checkout was down for 40 minutes after a failed deployment. No "
        "personal data was exposed. Everything works again.",
        data_at_risk="no",
    )
    incident_transition(actor=actor, incident=outage, status=IncidentStatus.RESOLVED)
    breach = incident_create(
        actor=actor,
        data={
            "title": "Support export shared with the wrong vendor",
            "kind": "suspected_breach",
            "severity": "high",
            "occurred_at": now - timedelta(days=2),
            "detected_at": now - timedelta(hours=30),
            "aware_at": now - timedelta(hours=26),
            "data_categories": ["identity", "contact"],
            "systems": ["support tool", "vendor SFTP"],
            "risk_level": "high",
            "risk_reasoning": "Names and contact details in plain text; the vendor "
            "confirms deletion but we cannot verify it yet.",
            "what_happened": "A support export went to a vendor who should not see it.",
            "what_we_are_doing": "The vendor deleted it; we are checking their logs.",
            "what_you_can_do": "Be wary of messages asking for your password.",
            "contact": "privacy@amanah.example",
        },
    )
    affected_select(
        actor=actor, incident=breach, scope="countries", countries=["ID", "US", "DE"]
    )
    return 2
