from datetime import datetime, timedelta
from unittest import mock

from apps.access.models import AccessLogEntry, AccessPurpose, Reveal, RevealStatus
from apps.audit import services as audit
from apps.audit.models import AuditEvent
from apps.monitoring.models import Alert, LookupKind, SearchBy, StaffLookup
from apps.monitoring.rules import Hit

# A Wednesday, mid-morning in UTC (the test TIME_ZONE).
NOON = datetime.fromisoformat("2026-11-18T12:00:00+00:00")


def reveals(staff, customer, *, at: datetime, count: int = 1, status=None) -> None:
    Reveal.objects.bulk_create(
        Reveal(
            staff=staff,
            customer=customer,
            fields=["email"],
            reason="Customer asked for a callback",
            status=status or RevealStatus.GRANTED,
            created_at=at,
            expires_at=at + timedelta(minutes=10),
        )
        for _ in range(count)
    )


def hourly_reveals(staff, customer, *, until: datetime, days: int, per_hour: int):
    """`per_hour` reveals in each of eight working hours a day for `days` days."""
    for day in range(1, days + 1):
        for hour in range(9, 17):
            at = (until - timedelta(days=day)).replace(hour=hour, minute=15)
            reveals(staff, customer, at=at, count=per_hour)


def reads(staff, customer, *, at: datetime, count: int = 1) -> None:
    AccessLogEntry.objects.bulk_create(
        AccessLogEntry(
            staff=staff,
            staff_role=staff.role,
            customer=customer,
            fields={"email": "masked"},
            purpose=AccessPurpose.SEARCH,
            created_at=at,
        )
        for _ in range(count)
    )


def lookups(
    staff,
    *,
    kind: str,
    at: datetime,
    count: int = 1,
    search_by: str = SearchBy.EMAIL,
    customer_id=None,
) -> None:
    StaffLookup.objects.bulk_create(
        StaffLookup(
            staff=staff,
            kind=kind,
            search_by=search_by if kind == LookupKind.SEARCH else "",
            customer_id=customer_id,
            created_at=at,
        )
        for _ in range(count)
    )


def audited_at(at: datetime, **kwargs) -> AuditEvent:
    """An audit event as if recorded at `at` (the trail is append-only)."""
    with mock.patch("django.utils.timezone.now", return_value=at):
        return audit.record(**kwargs)


def make_alert(*, staff=None, severity="medium", rule="probing", **overrides) -> Alert:
    data = {
        "rule": rule,
        "severity": severity,
        "staff": staff,
        "evidence": {"not_found": 12, "distinct_ids": 12},
        "dedupe_key": f"{rule}:{getattr(staff, 'pk', '-')}:{Alert.objects.count()}",
        "created_at": NOON,
    }
    data.update(overrides)
    return Alert.objects.create(**data)


def hit(*, staff_id=None, severity="high", key="test:1", window=None) -> Hit:
    return Hit(
        rule="reveal_volume",
        severity=severity,
        staff_id=staff_id,
        evidence={"reveals": 15},
        dedupe_key=key,
        window=window,
    )
