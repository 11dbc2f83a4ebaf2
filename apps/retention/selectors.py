"""Reads for retention: active holds, what is due, and the retention report."""

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from apps.consent.models import ConsentEvent, ConsentState
from apps.retention.models import (
    DisposalLogEntry,
    DisposalRun,
    LegalHold,
    RetentionPolicy,
    Trigger,
)
from apps.retention.scopes import SCOPES


def holds_active(*, at: datetime | None = None) -> QuerySet[LegalHold]:
    at = at or timezone.now()
    return LegalHold.objects.filter(released_at__isnull=True).filter(
        Q(ends_at__isnull=True) | Q(ends_at__gt=at)
    )


def hold_list() -> QuerySet[LegalHold]:
    return LegalHold.objects.select_related("placed_by", "released_by").order_by(
        "released_at", "-placed_at"
    )


def policy_list(*, enabled_only: bool = False) -> QuerySet[RetentionPolicy]:
    policies = RetentionPolicy.objects.all()
    return policies.filter(enabled=True) if enabled_only else policies


def policy_get(*, code: str) -> RetentionPolicy | None:
    return RetentionPolicy.objects.filter(code=code).first()


def _held_filter(policy: RetentionPolicy, at: datetime) -> Q:
    """Rows under a legal hold: the whole kind, or their customer."""
    holds = holds_active(at=at)
    if holds.filter(covers=policy.covers).exists():
        return Q(pk__isnull=False)  # everything
    held_customers = holds.filter(customer__isnull=False).values("customer_id")
    return Q(**{f"{SCOPES[policy.covers].customer_field}__in": held_customers})


def disposable(policy: RetentionPolicy, *, at: datetime | None = None) -> QuerySet:
    """Rows due now under the policy and not held: what a run disposes of."""
    at = at or timezone.now()
    return SCOPES[policy.covers].due(policy, at=at).exclude(_held_filter(policy, at))


def _window_counts(policy: RetentionPolicy, at: datetime) -> dict[str, int]:
    if policy.trigger == Trigger.CONSENT_WITHDRAWN:
        return _consent_window_counts(policy, at)
    scope = SCOPES[policy.covers]
    rows = scope.rows(policy)
    period = timedelta(days=policy.period_days)
    held = _held_filter(policy, at)

    def clock(days: int) -> Q:
        return scope.clock(policy, before=at + timedelta(days=days) - period)

    counts = rows.aggregate(
        held=Count("pk"),
        due_30=Count("pk", filter=clock(30) & ~clock(0)),
        due_60=Count("pk", filter=clock(60) & ~clock(0)),
        due_90=Count("pk", filter=clock(90) & ~clock(0)),
        overdue=Count("pk", filter=clock(0) & ~held),
        on_hold=Count("pk", filter=clock(0) & held),
    )
    return counts


def _consent_window_counts(policy: RetentionPolicy, at: datetime) -> dict[str, int]:
    """`_window_counts` for consent events, whose clock is their consent's withdrawal.

    The ORM can only ask that per event (a correlated EXISTS in every window, over
    millions of events); one join of the withdrawn states that can fall due within 90
    days to their events answers every window in one pass.
    """
    period = timedelta(days=policy.period_days)

    def limit(days: int) -> datetime:
        return at + timedelta(days=days) - period

    holds = holds_active(at=at)
    if holds.filter(covers=policy.covers).exists():
        held_sql, held_params = "TRUE", ()
    else:
        inner, held_params = (
            holds.filter(customer__isnull=False).values("customer_id").query
        ).sql_with_params()
        held_sql = f"e.customer_id IN ({inner})"
    due = "s.updated_at <= %s AND s.updated_at > %s"
    # Table names from model metadata, the held customers' statement from the ORM;
    # every value is a bound parameter.
    sql = (
        f"SELECT count(*) FILTER (WHERE {due}), count(*) FILTER (WHERE {due}), "  # noqa: S608  # nosec B608
        f"count(*) FILTER (WHERE {due}), "
        f"count(*) FILTER (WHERE s.updated_at <= %s AND NOT ({held_sql})), "
        f"count(*) FILTER (WHERE s.updated_at <= %s AND ({held_sql})) "
        f"FROM {ConsentState._meta.db_table} s "
        f"JOIN {ConsentEvent._meta.db_table} e "
        "ON e.customer_id = s.customer_id AND e.purpose_id = s.purpose_id "
        "WHERE NOT s.granted AND s.updated_at <= %s"
    )
    params = [
        *(limit(30), limit(0), limit(60), limit(0), limit(90), limit(0)),
        limit(0),
        *held_params,
        limit(0),
        *held_params,
        limit(90),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        due_30, due_60, due_90, overdue, on_hold = cursor.fetchone()
    return {
        "held": SCOPES[policy.covers].rows(policy).count(),
        "due_30": due_30,
        "due_60": due_60,
        "due_90": due_90,
        "overdue": overdue,
        "on_hold": on_hold,
    }


def retention_report(*, at: datetime | None = None) -> dict[str, Any]:
    """Per policy: records held, due within 30/60/90 days, overdue (should be zero),
    on legal hold, disposed so far; disposals per month; the last runs."""
    at = at or timezone.now()
    disposed = dict(
        DisposalLogEntry.objects.values("policy")
        .annotate(total=Sum("records"))
        .values_list("policy", "total")
    )
    policies = []
    for policy in policy_list(enabled_only=True):
        counts = _window_counts(policy, at)
        policies.append(
            {
                "code": policy.code,
                "covers": policy.covers,
                "action": policy.action,
                "period_days": policy.period_days,
                **counts,
                "disposed_total": disposed.get(policy.pk, 0),
            }
        )
    return {"generated_at": at.isoformat(), "policies": policies}


def _month_start(year: int, month: int) -> datetime:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return datetime(year, month, 1, tzinfo=UTC)


def disposed_per_month(*, months: int = 12, at: datetime | None = None) -> list[dict]:
    """Records disposed per calendar month (UTC), the current month last."""
    at = (at or timezone.now()).astimezone(UTC)
    firsts = [
        _month_start(at.year, at.month - offset) for offset in range(months - 1, -1, -1)
    ]
    rows = (
        DisposalLogEntry.objects.filter(disposed_at__gte=firsts[0])
        .annotate(month=TruncMonth("disposed_at", tzinfo=UTC))
        .values("month")
        .annotate(total=Sum("records"))
    )
    totals = {row["month"].strftime("%Y-%m"): row["total"] for row in rows}
    return [
        {
            "month": first.strftime("%Y-%m"),
            "disposed": totals.get(first.strftime("%Y-%m"), 0),
        }
        for first in firsts
    ]


def run_list_recent(*, limit: int = 10) -> QuerySet[DisposalRun]:
    return DisposalRun.objects.prefetch_related("progress__policy").order_by(
        "-started_at"
    )[:limit]
