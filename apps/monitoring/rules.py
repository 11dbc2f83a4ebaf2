"""Suspicious-access rules: one small class each, over the access log, the reveals,
the staff lookups and the audit trail.

Every rule aggregates in SQL and returns `Hit`s: the rule, a severity, the staff member
concerned (none for system rules), evidence made of ids and counts only, and a dedupe
key naming the window the hit belongs to. Reads only; `services.rules_evaluate` turns
hits into alerts. Thresholds are read from settings at call time.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import Count, F, Max, Min, Q, QuerySet
from django.db.models.functions import ExtractHour, ExtractMinute, TruncHour
from django.utils import timezone

from apps.access.models import AccessPurpose
from apps.access.selectors import access_log_list, reveal_list_granted
from apps.accounts.models import STAFF_ROLES
from apps.accounts.selectors import user_count_by_role
from apps.audit.selectors import audit_event_list_between
from apps.monitoring.models import AlertSeverity, LookupKind, SearchBy, StaffLookup
from apps.retention.selectors import disposal_scheduled_at


@dataclass(frozen=True)
class Hit:
    rule: str
    severity: str
    staff_id: int | None
    evidence: dict[str, Any]
    dedupe_key: str
    # Another hit of this rule for this staff member within this period is the same
    # episode (a rolling window straddling two dedupe buckets): no second alert.
    window: timedelta | None = field(default=None, compare=False)


class Rule:
    code: ClassVar[str]
    title: ClassVar[str]
    severity: ClassVar[str]
    # Evaluated right after each reveal, for the agent who revealed.
    on_reveal: ClassVar[bool] = False

    def evaluate(self, *, now: datetime, staff_id: int | None = None) -> list[Hit]:
        """The rule's hits at `now`, for one staff member or for everyone."""
        raise NotImplementedError

    def _bucket_key(
        self, staff_id: int | None, now: datetime, window: timedelta
    ) -> str:
        bucket = int(now.timestamp() // window.total_seconds())
        return f"{self.code}:{staff_id or '-'}:{bucket}"


def _for_staff(queryset: QuerySet, staff_id: int | None) -> QuerySet:
    return queryset.filter(staff_id=staff_id) if staff_id is not None else queryset


def _z(value: float, mean: float, std: float) -> float:
    # A floor of one: with no spread (a quiet history) any burst is far out, and the
    # minimum count decides.
    return (value - mean) / max(std, 1.0)


def _mean_std(total: float, squares: float, n: int) -> tuple[float, float]:
    if n <= 0:
        return 0.0, 0.0
    mean = total / n
    return mean, max(squares / n - mean * mean, 0.0) ** 0.5


class RevealVolume(Rule):
    """Reveals in the last hour far above the agent's own hourly baseline and their
    peers' (same role): z-scores over the last AMANAH_MONITOR_BASELINE_DAYS, and at
    least AMANAH_MONITOR_REVEAL_MIN reveals."""

    code = "reveal_volume"
    title = "Reveal volume far above baseline"
    severity = AlertSeverity.HIGH
    on_reveal = True
    window = timedelta(hours=1)

    def evaluate(self, *, now: datetime, staff_id: int | None = None) -> list[Hit]:
        start = now - self.window
        current = (
            reveal_list_granted(since=start, until=now, staff_id=staff_id)
            # The revealing staff member's current role, through the reveal's foreign
            # key: one join in the aggregate (docs/ARCHITECTURE.md, on purpose).
            .values("staff_id", role=F("staff__role"))
            .annotate(n=Count("pk"), first_id=Min("pk"), last_id=Max("pk"))
            .filter(n__gte=settings.AMANAH_MONITOR_REVEAL_MIN)
        )
        candidates = list(current)
        if not candidates:
            return []
        days = settings.AMANAH_MONITOR_BASELINE_DAYS
        hours = days * 24
        roles = {row["role"] for row in candidates}
        stats = self._baseline(
            roles=roles, since=start - timedelta(days=days), to=start
        )
        staff_per_role = user_count_by_role(roles=roles)
        per_role: dict[str, tuple[int, int]] = {}
        for role, total, squares in stats.values():
            role_total, role_squares = per_role.get(role, (0, 0))
            per_role[role] = (role_total + total, role_squares + squares)
        threshold = settings.AMANAH_MONITOR_REVEAL_Z
        hits = []
        for row in candidates:
            _, own_total, own_squares = stats.get(row["staff_id"], ("", 0, 0))
            mean, std = _mean_std(own_total, own_squares, hours)
            z_self = _z(row["n"], mean, std)
            # Peers: everyone else active in the role, one agent-hour per bucket.
            peers = max(staff_per_role.get(row["role"], 0) - 1, 0)
            role_total, role_squares = per_role.get(row["role"], (0, 0))
            peer_mean, peer_std = _mean_std(
                role_total - own_total, role_squares - own_squares, hours * peers
            )
            z_peer = _z(row["n"], peer_mean, peer_std)
            # Without peers (the only one of their role) the own baseline decides.
            if z_self < threshold or (peers and z_peer < threshold):
                continue
            hits.append(
                Hit(
                    rule=self.code,
                    severity=self.severity,
                    staff_id=row["staff_id"],
                    evidence={
                        "reveals": row["n"],
                        "window_minutes": self.window // timedelta(minutes=1),
                        "first_reveal_id": row["first_id"],
                        "last_reveal_id": row["last_id"],
                        "baseline_days": days,
                        "baseline_mean": round(mean, 2),
                        "baseline_std": round(std, 2),
                        "z_self": round(z_self, 2),
                        "peers": peers,
                        "peer_mean": round(peer_mean, 2),
                        "peer_std": round(peer_std, 2),
                        "z_peer": round(z_peer, 2),
                    },
                    dedupe_key=self._bucket_key(row["staff_id"], now, self.window),
                    window=self.window,
                )
            )
        return hits

    def _baseline(
        self, *, roles: set[str], since: datetime, to: datetime
    ) -> dict[int, tuple[str, int, int]]:
        """Per staff member of these roles: their role, and the sum and the sum of
        squares of their hourly reveal counts, computed by the database over hourly
        buckets (hours without reveals add nothing to either)."""
        buckets = (
            # As the peer count: staff who left take their history with them.
            reveal_list_granted(since=since, until=to, roles=roles)
            .values("staff_id", role=F("staff__role"), hour=TruncHour("created_at"))
            .annotate(n=Count("pk"))
        )
        sql, params = buckets.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                # The inner statement is Django's own compiled query, parameters bound.
                "SELECT b.staff_id, b.role, SUM(b.n), SUM(b.n * b.n) "  # noqa: S608  # nosec B608
                f"FROM ({sql}) AS b GROUP BY b.staff_id, b.role",
                params,
            )
            rows = cursor.fetchall()
        return {
            staff: (role, int(total), int(squares))
            for staff, role, total, squares in rows
        }


class OffHoursReads(Rule):
    """Reads of customer data (the access log) outside working hours,
    AMANAH_MONITOR_WORK_HOURS_START to _END in TIME_ZONE: one alert per staff member
    per stretch of off hours (an evening, the night and the early morning after it)."""

    code = "off_hours"
    title = "Reads outside working hours"
    severity = AlertSeverity.LOW
    on_reveal = True

    def evaluate(self, *, now: datetime, staff_id: int | None = None) -> list[Hit]:
        start, end = (
            settings.AMANAH_MONITOR_WORK_HOURS_START,
            settings.AMANAH_MONITOR_WORK_HOURS_END,
        )
        if start == end:  # no working-hours limit configured
            return []
        if start < end:
            outside = Q(local_hour__lt=start) | Q(local_hour__gte=end)
        else:  # a night shift, e.g. 22-06
            outside = Q(local_hour__gte=end, local_hour__lt=start)
        tz = timezone.get_default_timezone()
        lookback = timedelta(minutes=settings.AMANAH_MONITOR_LOOKBACK_MINUTES)
        rows = (
            access_log_list(since=now - lookback, until=now, staff_id=staff_id)
            .annotate(local_hour=ExtractHour("created_at", tzinfo=tz))
            .filter(outside)
            .values("staff_id")
            .annotate(
                reads=Count("pk"),
                customers=Count("customer_id", distinct=True),
                first_id=Min("pk"),
                last_id=Max("pk"),
                since=Min("created_at"),
            )
            .filter(reads__gte=settings.AMANAH_MONITOR_OFF_HOURS_MIN_READS)
        )
        hits = []
        for row in rows:
            # Shifted back by the end of the working day, a whole stretch of off hours
            # falls on one date: the dedupe key stays put while the lookback slides.
            local = timezone.localtime(row["since"], tz) - timedelta(hours=end)
            hits.append(
                Hit(
                    rule=self.code,
                    severity=self.severity,
                    staff_id=row["staff_id"],
                    evidence={
                        "reads": row["reads"],
                        "customers": row["customers"],
                        "first_access_id": row["first_id"],
                        "last_access_id": row["last_id"],
                        "working_hours": f"{start:02d}:00-{end:02d}:00",
                    },
                    dedupe_key=f"{self.code}:{row['staff_id']}:{local.date()}",
                )
            )
        return hits


class SearchEnumeration(Rule):
    """Many searches by email or phone in a short window: at least
    AMANAH_MONITOR_ENUMERATION_SEARCHES in AMANAH_MONITOR_ENUMERATION_MINUTES."""

    code = "enumeration"
    title = "Many customers searched by email or phone"
    severity = AlertSeverity.HIGH

    def evaluate(self, *, now: datetime, staff_id: int | None = None) -> list[Hit]:
        window = timedelta(minutes=settings.AMANAH_MONITOR_ENUMERATION_MINUTES)
        since = now - window
        rows = list(
            _for_staff(StaffLookup.objects.filter(kind=LookupKind.SEARCH), staff_id)
            .filter(created_at__gt=since, created_at__lte=now)
            .values("staff_id")
            .annotate(
                searches=Count("pk"),
                by_email=Count(
                    "pk", filter=Q(search_by__in=[SearchBy.EMAIL, SearchBy.BOTH])
                ),
                by_phone=Count(
                    "pk", filter=Q(search_by__in=[SearchBy.PHONE, SearchBy.BOTH])
                ),
                first_id=Min("pk"),
                last_id=Max("pk"),
            )
            .filter(searches__gte=settings.AMANAH_MONITOR_ENUMERATION_SEARCHES)
        )
        if not rows:
            return []
        # The searched values are never kept; the access log says whom they found.
        found = dict(
            access_log_list(
                since=since,
                until=now,
                staff_ids=[row["staff_id"] for row in rows],
                purpose=AccessPurpose.SEARCH,
            )
            .values("staff_id")
            .annotate(n=Count("customer_id", distinct=True))
            .values_list("staff_id", "n")
        )
        return [
            Hit(
                rule=self.code,
                severity=self.severity,
                staff_id=row["staff_id"],
                evidence={
                    "searches": row["searches"],
                    "by_email": row["by_email"],
                    "by_phone": row["by_phone"],
                    "customers_found": found.get(row["staff_id"], 0),
                    "window_minutes": settings.AMANAH_MONITOR_ENUMERATION_MINUTES,
                    "first_lookup_id": row["first_id"],
                    "last_lookup_id": row["last_id"],
                },
                dedupe_key=self._bucket_key(row["staff_id"], now, window),
                window=window,
            )
            for row in rows
        ]


class CustomerIdProbing(Rule):
    """Repeated 404s on customer ids (unknown, or not assigned to the agent): at least
    AMANAH_MONITOR_PROBING_NOT_FOUND in AMANAH_MONITOR_PROBING_MINUTES."""

    code = "probing"
    title = "Repeated 404s on customer ids"
    severity = AlertSeverity.MEDIUM

    def evaluate(self, *, now: datetime, staff_id: int | None = None) -> list[Hit]:
        window = timedelta(minutes=settings.AMANAH_MONITOR_PROBING_MINUTES)
        rows = (
            _for_staff(StaffLookup.objects.filter(kind=LookupKind.NOT_FOUND), staff_id)
            .filter(created_at__gt=now - window, created_at__lte=now)
            .values("staff_id")
            .annotate(
                not_found=Count("pk"),
                distinct_ids=Count("customer_id", distinct=True),
                first_id=Min("pk"),
                last_id=Max("pk"),
            )
            .filter(not_found__gte=settings.AMANAH_MONITOR_PROBING_NOT_FOUND)
        )
        return [
            Hit(
                rule=self.code,
                severity=self.severity,
                staff_id=row["staff_id"],
                evidence={
                    "not_found": row["not_found"],
                    "distinct_ids": row["distinct_ids"],
                    "window_minutes": settings.AMANAH_MONITOR_PROBING_MINUTES,
                    "first_lookup_id": row["first_id"],
                    "last_lookup_id": row["last_id"],
                },
                dedupe_key=self._bucket_key(row["staff_id"], now, window),
                window=window,
            )
            for row in rows
        ]


CONSENT_ACTIONS = ("consent.granted", "consent.withdrawn")


class ConsentChangeVolume(Rule):
    """Consent changes recorded by one staff member (audit trail) in the last hour: at
    least AMANAH_MONITOR_CONSENT_CHANGES_PER_HOUR."""

    code = "consent_volume"
    title = "Staff consent changes at unusual volume"
    severity = AlertSeverity.MEDIUM
    window = timedelta(hours=1)

    def evaluate(self, *, now: datetime, staff_id: int | None = None) -> list[Hit]:
        rows = (
            audit_event_list_between(
                actions=CONSENT_ACTIONS,
                after=now - self.window,
                until=now,
                actor_id=staff_id,
                actor_roles=sorted(STAFF_ROLES),
            )
            .values("actor_id")
            .annotate(
                changes=Count("pk"),
                granted=Count("pk", filter=Q(action="consent.granted")),
                withdrawn=Count("pk", filter=Q(action="consent.withdrawn")),
                customers=Count("target_id", distinct=True),
                first_seq=Min("seq"),
                last_seq=Max("seq"),
            )
            .filter(changes__gte=settings.AMANAH_MONITOR_CONSENT_CHANGES_PER_HOUR)
        )
        return [
            Hit(
                rule=self.code,
                severity=self.severity,
                staff_id=row["actor_id"],
                evidence={
                    "changes": row["changes"],
                    "granted": row["granted"],
                    "withdrawn": row["withdrawn"],
                    "customers": row["customers"],
                    "window_minutes": self.window // timedelta(minutes=1),
                    "first_audit_seq": row["first_seq"],
                    "last_audit_seq": row["last_seq"],
                },
                dedupe_key=self._bucket_key(row["actor_id"], now, self.window),
                window=self.window,
            )
            for row in rows
        ]


def _schedule_lookback(now: datetime) -> datetime:
    return now - timedelta(hours=settings.AMANAH_MONITOR_SCHEDULE_LOOKBACK_HOURS)


class DisposalOffSchedule(Rule):
    """A disposal run started or resumed (audit trail) more than
    AMANAH_MONITOR_DISPOSAL_TOLERANCE_MINUTES away from the nightly beat job
    (retention's `disposal_scheduled_at`, 02:30 in TIME_ZONE)."""

    code = "disposal_off_schedule"
    title = "Disposal run outside its schedule"
    severity = AlertSeverity.MEDIUM
    actions = ("disposal.run_started", "disposal.run_resumed")

    def evaluate(self, *, now: datetime, staff_id: int | None = None) -> list[Hit]:
        at = disposal_scheduled_at()
        tolerance = settings.AMANAH_MONITOR_DISPOSAL_TOLERANCE_MINUTES
        if 2 * tolerance >= 24 * 60:
            return []  # any time of day is on schedule
        center = at.hour * 60 + at.minute
        low, high = center - tolerance, center + tolerance
        if low < 0:
            on_time = Q(minute_of_day__gte=low + 1440) | Q(minute_of_day__lte=high)
        elif high >= 1440:
            on_time = Q(minute_of_day__gte=low) | Q(minute_of_day__lte=high - 1440)
        else:
            on_time = Q(minute_of_day__gte=low, minute_of_day__lte=high)
        tz = timezone.get_default_timezone()
        events = (
            audit_event_list_between(
                actions=self.actions,
                after=_schedule_lookback(now),
                until=now,
                actor_id=staff_id,
            )
            .annotate(
                minute_of_day=ExtractHour("created_at", tzinfo=tz) * 60
                + ExtractMinute("created_at", tzinfo=tz)
            )
            .exclude(on_time)
            .values("seq", "actor_id", "action", "target_id", "minute_of_day")
        )
        return [
            Hit(
                rule=self.code,
                severity=self.severity,
                staff_id=event["actor_id"],
                evidence={
                    "audit_seq": event["seq"],
                    "action": event["action"],
                    "run_id": int(event["target_id"])
                    if event["target_id"].isdigit()
                    else None,
                    "local_time": "{:02d}:{:02d}".format(
                        *divmod(event["minute_of_day"], 60)
                    ),
                    "scheduled_at": at.strftime("%H:%M"),
                    "tolerance_minutes": tolerance,
                },
                dedupe_key=f"{self.code}:{event['seq']}",
            )
            for event in events
        ]


def key_rotation_windows() -> list[tuple[datetime, datetime]]:
    """AMANAH_MONITOR_KEY_ROTATION_WINDOWS as (start, end) pairs; a time without an
    offset is in TIME_ZONE. Raises ImproperlyConfigured."""
    windows = []
    for entry in settings.AMANAH_MONITOR_KEY_ROTATION_WINDOWS:
        try:
            start, end = (datetime.fromisoformat(p.strip()) for p in entry.split("/"))
        except ValueError:
            raise ImproperlyConfigured(
                "AMANAH_MONITOR_KEY_ROTATION_WINDOWS entries must be START/END "
                f"ISO date-times, not {entry!r}"
            ) from None
        tz = timezone.get_default_timezone()
        start, end = (
            moment if timezone.is_aware(moment) else timezone.make_aware(moment, tz)
            for moment in (start, end)
        )
        if end <= start:
            raise ImproperlyConfigured(
                f"AMANAH_MONITOR_KEY_ROTATION_WINDOWS: {entry!r} ends before it starts"
            )
        windows.append((start, end))
    return windows


class KeyRotationOffSchedule(Rule):
    """A key rotation started or resumed (audit trail) outside every window announced
    in AMANAH_MONITOR_KEY_ROTATION_WINDOWS; with none announced, every one. Beat's
    own epoch rotation (`scheduled` in the event) is announced by the schedule."""

    code = "key_rotation_off_schedule"
    title = "Key rotation outside an announced window"
    severity = AlertSeverity.HIGH

    def evaluate(self, *, now: datetime, staff_id: int | None = None) -> list[Hit]:
        events = audit_event_list_between(
            actions=("keys.rotation_started", "keys.rotation_resumed"),
            after=_schedule_lookback(now),
            until=now,
            actor_id=staff_id,
        ).filter(Q(details__scheduled__isnull=True) | ~Q(details__scheduled=True))
        announced = Q()
        for start, end in key_rotation_windows():
            announced |= Q(created_at__gte=start, created_at__lt=end)
        if announced:
            events = events.exclude(announced)
        hits = []
        for event in events.values("seq", "actor_id", "details"):
            details = event["details"] or {}
            evidence = {"audit_seq": event["seq"]}
            for key in ("to_version", "pending"):
                if isinstance(details.get(key), int):
                    evidence[key] = details[key]
            hits.append(
                Hit(
                    rule=self.code,
                    severity=self.severity,
                    staff_id=event["actor_id"],
                    evidence=evidence,
                    dedupe_key=f"{self.code}:{event['seq']}",
                )
            )
        return hits


RULES: tuple[Rule, ...] = (
    RevealVolume(),
    OffHoursReads(),
    SearchEnumeration(),
    CustomerIdProbing(),
    ConsentChangeVolume(),
    DisposalOffSchedule(),
    KeyRotationOffSchedule(),
)
RULES_BY_CODE: dict[str, Rule] = {rule.code: rule for rule in RULES}


def rule_title(code: str) -> str:
    rule = RULES_BY_CODE.get(code)
    return rule.title if rule else code
