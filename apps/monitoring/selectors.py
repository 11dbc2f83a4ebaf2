"""Reads for monitoring: alerts for the compliance page and API, and who is told."""

from datetime import datetime

from django.conf import settings
from django.db.models import Count, Q, QuerySet

from apps.accounts.models import Role
from apps.accounts.selectors import user_emails_for_role
from apps.core.errors import NotFound
from apps.monitoring.models import Alert, AlertSeverity, AlertStatus


def alert_list(*, status: str = "", severity: str = "") -> QuerySet[Alert]:
    """Alerts newest first, of one status or all, of one severity or all."""
    alerts = Alert.objects.select_related("staff", "handled_by", "incident")
    if status:
        alerts = alerts.filter(status=status)
    if severity:
        alerts = alerts.filter(severity=severity)
    return alerts.order_by("-created_at", "-pk")


def alert_get(*, alert_id: int | str) -> Alert:
    """One alert. Raises NotFound."""
    try:
        return Alert.objects.select_related("staff", "handled_by", "incident").get(
            pk=alert_id
        )
    except (Alert.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such alert.") from None


def alert_counts(*, status: str = "") -> dict[str, dict[str, int]]:
    """How many alerts per status (all of them), and per severity (of `status`, or
    all): one query."""
    in_view = Q(status=status) if status else Q()
    counts = Alert.objects.aggregate(
        **{f"status_{s}": Count("pk", filter=Q(status=s)) for s in AlertStatus.values},
        **{
            f"severity_{s}": Count("pk", filter=in_view & Q(severity=s))
            for s in AlertSeverity.values
        },
    )
    return {
        "status": {s: counts[f"status_{s}"] for s in AlertStatus.values},
        "severity": {s: counts[f"severity_{s}"] for s in AlertSeverity.values},
    }


def alert_recipients() -> list[str]:
    """AMANAH_ALERT_EMAILS, or else the addresses of active compliance officers."""
    if settings.AMANAH_ALERT_EMAILS:
        return list(settings.AMANAH_ALERT_EMAILS)
    return user_emails_for_role(role=Role.COMPLIANCE_OFFICER)


def alert_open_counts() -> dict[str, int]:
    """How many alerts are open, per severity (every severity, zeros included): one
    query over the open alerts only (index monitoring_alert_status)."""
    rows = (
        Alert.objects.filter(status=AlertStatus.OPEN)
        .order_by()
        .values_list("severity")
        .annotate(n=Count("pk"))
    )
    counts = dict.fromkeys(AlertSeverity.values, 0)
    counts.update(dict(rows))
    return counts


def alert_reveals_suspended_since(*, staff_id: int) -> datetime | None:
    """Since when an alert holds the staff member's reveals suspended: the earliest
    suspension among their alerts still open or acknowledged (None: none). Dismissing
    the alert, or escalating it to an incident, lifts it. access asks through
    `apps.access.watchers.reveals_suspended_since`, without importing monitoring."""
    return (
        Alert.objects.filter(
            staff_id=staff_id,
            reveals_suspended_at__isnull=False,
            status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED],
        )
        .order_by("reveals_suspended_at")
        .values_list("reveals_suspended_at", flat=True)
        .first()
    )
