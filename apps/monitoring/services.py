"""Writes for monitoring: staff lookups, alerts raised from rule hits, and their
handling (acknowledge, dismiss, escalate to an incident, suspend reveals). Audited.

Lock order (apps/core/db.py): the advisory lock for one rule and person, then the
alert, then the staff member's row and their live reveals (`reveals_live_lock`), then
the audit chain.
"""

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.access.services import reveals_live_lock, reveals_suspend
from apps.accounts.models import GOVERNANCE_ROLES, User
from apps.accounts.permissions import ensure_role
from apps.audit import services as audit
from apps.core import siem
from apps.core.db import advisory_xact_lock
from apps.core.links import public_url
from apps.customers.services import free_text_check
from apps.incidents.models import IncidentKind
from apps.incidents.services import incident_create
from apps.monitoring.errors import AlertError
from apps.monitoring.models import (
    Alert,
    AlertSeverity,
    AlertStatus,
    LookupKind,
    SearchBy,
    StaffLookup,
)
from apps.monitoring.rules import RULES, Hit, rule_title
from apps.monitoring.selectors import alert_recipients

logger = logging.getLogger(__name__)

REASON_MAX = 500
_ACTIVE = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)


# Staff lookups (recorded by the middleware) --------------------------------------


def lookup_record(
    *,
    staff: User,
    kind: str,
    search_by: str = "",
    customer_id: uuid.UUID | str | None = None,
) -> StaffLookup:
    """Note a search by email/phone or a 404 on a customer id: never the value."""
    if kind not in LookupKind.values:
        raise AlertError("Unknown lookup kind.", field="kind")
    if search_by and search_by not in SearchBy.values:
        raise AlertError("Search by email, phone or both.", field="search_by")
    if customer_id is not None and not isinstance(customer_id, uuid.UUID):
        try:
            customer_id = uuid.UUID(str(customer_id))
        except ValueError:
            customer_id = None
    return StaffLookup.objects.create(
        staff=staff,
        kind=kind,
        search_by=search_by,
        customer_id=customer_id,
        created_at=timezone.now(),
    )


def lookups_prune(*, now: datetime | None = None) -> int:
    """Delete lookups older than AMANAH_MONITOR_LOOKUP_DAYS. Returns how many."""
    cutoff = (now or timezone.now()) - timedelta(
        days=settings.AMANAH_MONITOR_LOOKUP_DAYS
    )
    return StaffLookup.objects.filter(created_at__lt=cutoff).delete()[0]


# Evaluating the rules ------------------------------------------------------------


def rules_evaluate(
    *,
    now: datetime | None = None,
    staff_id: int | None = None,
    on_reveal: bool = False,
    codes: Iterable[str] | None = None,
) -> list[Alert]:
    """Run the rules (those named, or the reveal-related ones, or all) for one staff
    member or everyone; raise an alert for each new hit. Returns the new alerts."""
    now = now or timezone.now()
    wanted = set(codes) if codes is not None else None
    raised = []
    for rule in RULES:
        if (on_reveal and not rule.on_reveal) or (
            wanted is not None and rule.code not in wanted
        ):
            continue
        for hit in rule.evaluate(now=now, staff_id=staff_id):
            alert = alert_raise(hit=hit, now=now)
            if alert is not None:
                raised.append(alert)
    logger.info(
        "monitoring.rules_evaluated",
        extra={"staff_id": staff_id, "raised": [a.pk for a in raised]},
    )
    return raised


def reveal_rules_schedule(*, staff_id: int) -> None:
    """After a reveal commits: evaluate the reveal-related rules for that agent."""
    from apps.monitoring.tasks import rules_evaluate_for_staff_task

    rules_evaluate_for_staff_task.delay(staff_id)


@transaction.atomic
def alert_raise(*, hit: Hit, now: datetime) -> Alert | None:
    """Record a hit as an alert, unless this hit (its dedupe key, or the same rule for
    the same person within the rule's window) was recorded already. A high one ends the
    agent's open reveals (AMANAH_ALERT_SUSPEND_ON_HIGH) and is emailed after commit.
    Returns the new alert, or None."""
    # The beat run and a post-reveal run may see the same hit on either side of a
    # bucket boundary (two dedupe keys): one at a time per rule and person.
    advisory_xact_lock(f"monitoring.alert:{hit.rule}:{hit.staff_id}")
    if (
        hit.window is not None
        and Alert.objects.filter(
            rule=hit.rule, staff_id=hit.staff_id, created_at__gt=now - hit.window
        ).exists()
    ):
        return None
    alert, created = Alert.objects.get_or_create(
        dedupe_key=hit.dedupe_key,
        defaults={
            "rule": hit.rule,
            "severity": hit.severity,
            "staff_id": hit.staff_id,
            "evidence": hit.evidence,
            "created_at": now,
        },
    )
    if not created:
        return None
    suspend = (
        alert.severity == AlertSeverity.HIGH
        and alert.staff_id is not None
        and settings.AMANAH_ALERT_SUSPEND_ON_HIGH
    )
    staff = alert.staff if suspend else None
    if staff is not None:
        reveals_live_lock(staff=staff)  # before the audit chain
    audit.record(
        actor=None,
        action="alert.raised",
        target=alert,
        details={"rule": alert.rule, "severity": alert.severity, "staff": hit.staff_id},
    )
    if suspend:
        _suspend(actor=None, alert=alert)
    if alert.severity == AlertSeverity.HIGH:
        from apps.monitoring.tasks import alert_notify_task

        alert_id = alert.pk
        # Robust: the alert stands even if the broker cannot take the email now.
        transaction.on_commit(lambda: alert_notify_task.delay(alert_id), robust=True)
    if siem.enabled():
        transaction.on_commit(
            partial(
                siem.alert_emit,
                alert_id=alert.pk,
                rule=alert.rule,
                severity=alert.severity,
                staff_id=alert.staff_id,
                evidence=alert.evidence,
                created_at=alert.created_at,
            ),
            robust=True,
        )
    logger.info(
        "monitoring.alert_raised",
        extra={"alert_id": alert.pk, "rule": alert.rule, "severity": alert.severity},
    )
    return alert


def _evidence_lines(evidence: dict[str, Any]) -> list[str]:
    return [f"  {key}: {value}" for key, value in evidence.items()]


def alert_notify(*, alert_id: int) -> int:
    """Email an alert (rule, severity, staff member, evidence: no customer data) to
    alert_recipients(), marked notified once sent. While one worker sends it, no
    other does; if that worker dies, the email is sent again once its claim is older
    than any task can run (at least once: staff may get it twice, never not at all).
    Returns how many addresses; a vanished or already notified alert is skipped."""
    now = timezone.now()
    claimed = (
        Alert.objects.filter(pk=alert_id, notified_at__isnull=True)
        .filter(
            Q(notify_claimed_at__isnull=True)
            | Q(notify_claimed_at__lt=now - _notify_lease())
        )
        .update(notify_claimed_at=now)
    )
    alert = Alert.objects.select_related("staff").filter(pk=alert_id).first()
    if alert is None:
        logger.warning("monitoring.alert_vanished", extra={"alert_id": alert_id})
        return 0
    if not claimed:
        return 0
    try:
        sent = _alert_email(alert)
    except Exception:
        Alert.objects.filter(pk=alert.pk).update(notify_claimed_at=None)
        raise
    Alert.objects.filter(pk=alert.pk).update(notified_at=timezone.now())
    return sent


def _notify_lease() -> timedelta:
    return timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)


def alerts_notify_pending(*, now: datetime | None = None) -> int:
    """Email the high alerts of the last day that were never emailed (the broker was
    down when they were raised, or the worker sending died). One that fails is
    logged and left for the next run; the others are still sent. Returns how many
    were sent."""
    now = now or timezone.now()
    pending = list(
        Alert.objects.filter(
            severity=AlertSeverity.HIGH,
            notified_at__isnull=True,
            created_at__gte=now - timedelta(days=1),
        )
        .filter(
            Q(notify_claimed_at__isnull=True)
            | Q(notify_claimed_at__lt=now - _notify_lease())
        )
        .values_list("pk", flat=True)
    )
    sent = 0
    for alert_id in pending:
        try:
            alert_notify(alert_id=alert_id)
        except OSError:  # the mail server: the next run tries again
            logger.warning(
                "monitoring.alert_email_failed", extra={"alert_id": alert_id}
            )
        else:
            sent += 1
    return sent


def _alert_email(alert: Alert) -> int:
    recipients = alert_recipients()
    if not recipients:
        logger.warning("monitoring.no_alert_recipients", extra={"alert_id": alert.pk})
        return 0
    url = public_url("monitoring:list")
    # The page names the person; the email, which leaves the system, says id and role.
    staff = (
        f"#{alert.staff_id} ({alert.staff.get_role_display()})"
        if alert.staff
        else "none (system rule)"
    )
    lines = [
        f"Alert #{alert.pk}: {rule_title(alert.rule)}",
        f"Severity: {alert.get_severity_display()}",
        f"Staff member: {staff}",
        f"Raised at: {alert.created_at:%Y-%m-%d %H:%M %Z}",
    ]
    if alert.reveals_suspended_at:
        lines.append("The staff member's open reveals were suspended.")
    lines += ["Evidence:", *_evidence_lines(alert.evidence), "", f"Handle it at {url}"]
    send_mail(
        subject=f"[Amanah] {alert.get_severity_display()} alert #{alert.pk}: "
        f"{rule_title(alert.rule)}",
        message="\n".join(lines),
        from_email=None,
        recipient_list=recipients,
    )
    logger.info(
        "monitoring.alert_emailed",
        extra={"alert_id": alert.pk, "recipients": len(recipients)},
    )
    return len(recipients)


# Handling ------------------------------------------------------------------------


def _lock(alert: Alert) -> Alert:
    return Alert.objects.select_for_update(no_key=True).get(pk=alert.pk)


def _handled(alert: Alert, *, actor: User, status: str) -> None:
    alert.status, alert.handled_by, alert.handled_at = status, actor, timezone.now()


@transaction.atomic
def alert_acknowledge(*, actor: User, alert: Alert) -> Alert:
    """Mark an open alert as seen and being looked at. Raises Forbidden, AlertError."""
    ensure_role(actor, *GOVERNANCE_ROLES)
    alert = _lock(alert)
    if alert.status != AlertStatus.OPEN:
        raise AlertError("Only an open alert can be acknowledged.", field="status")
    _handled(alert, actor=actor, status=AlertStatus.ACKNOWLEDGED)
    alert.save(update_fields=["status", "handled_by", "handled_at"])
    audit.record(actor=actor, action="alert.acknowledged", target=alert)
    return alert


@transaction.atomic
def alert_dismiss(*, actor: User, alert: Alert, reason: str) -> Alert:
    """Close an alert as harmless, with the reason. Raises Forbidden, AlertError."""
    ensure_role(actor, *GOVERNANCE_ROLES)
    reason = (reason or "").strip()
    if not reason:
        raise AlertError("Say why the alert is dismissed.", field="reason")
    if len(reason) > REASON_MAX:
        raise AlertError(
            f"Keep the reason under {REASON_MAX} characters.", field="reason"
        )
    if "\x00" in reason:  # PostgreSQL cannot store it: refuse it, not fail
        raise AlertError(
            "The reason holds a character that cannot be kept.", field="reason"
        )
    # An alert names no customer (its evidence is ids and counts): the reason, kept
    # for good, is checked for personal data of anyone.
    free_text_check(text=reason, field="reason", error=AlertError)
    alert = _lock(alert)
    if alert.status not in _ACTIVE:
        raise AlertError("This alert was handled already.", field="status")
    _handled(alert, actor=actor, status=AlertStatus.DISMISSED)
    alert.reason = reason
    alert.save(update_fields=["status", "handled_by", "handled_at", "reason"])
    audit.record(
        actor=actor,
        action="alert.dismissed",
        target=alert,
        details={"reason": reason},
    )
    return alert


@transaction.atomic
def alert_escalate(*, actor: User, alert: Alert) -> Alert:
    """Open a suspected-breach incident for the alert (the incident's clocks start
    now) and link it. Raises Forbidden, AlertError."""
    ensure_role(actor, *GOVERNANCE_ROLES)
    alert = _lock(alert)
    if alert.status not in _ACTIVE:
        raise AlertError("This alert was handled already.", field="status")
    now = timezone.now()
    evidence = ", ".join(f"{k}={v}" for k, v in alert.evidence.items())
    incident = incident_create(
        actor=actor,
        data={
            "title": f"Suspicious access: {rule_title(alert.rule)} (alert #{alert.pk})",
            "kind": IncidentKind.SUSPECTED_BREACH,
            "severity": alert.severity,  # low, medium, high: the incident scale
            "detected_at": min(alert.created_at, now),
            "aware_at": now,
            "systems": ["Amanah portal"],
            "risk_reasoning": (
                f"Escalated from monitoring alert #{alert.pk} ({alert.rule}, "
                f"staff #{alert.staff_id or '-'}). Evidence: {evidence}."
            ),
        },
    )
    _handled(alert, actor=actor, status=AlertStatus.ESCALATED)
    alert.incident = incident
    alert.save(update_fields=["status", "handled_by", "handled_at", "incident"])
    audit.record(
        actor=actor,
        action="alert.escalated",
        target=alert,
        details={"incident": str(incident.pk)},
    )
    return alert


def _suspend(*, actor: User | None, alert: Alert) -> int:
    staff = alert.staff
    if staff is None:  # Callers check the alert names someone first.
        raise AlertError("This alert names no staff member.", field="staff")
    count = reveals_suspend(actor=actor, staff=staff, cause=f"alert:{alert.pk}")
    alert.reveals_suspended_at = timezone.now()
    alert.save(update_fields=["reveals_suspended_at"])
    audit.record(
        actor=actor,
        action="alert.reveals_suspended",
        target=alert,
        details={"staff": alert.staff_id, "count": count},
    )
    return count


@transaction.atomic
def alert_suspend_reveals(*, actor: User, alert: Alert) -> int:
    """End the concerned staff member's open reveals now. Returns how many. Raises
    Forbidden, AlertError."""
    ensure_role(actor, *GOVERNANCE_ROLES)
    alert = _lock(alert)
    if alert.staff_id is None:
        raise AlertError("This alert names no staff member.", field="staff")
    if alert.status == AlertStatus.DISMISSED:
        raise AlertError("This alert was dismissed.", field="status")
    return _suspend(actor=actor, alert=alert)
