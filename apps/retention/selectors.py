"""Reads for retention: active holds, what is due, and the retention report."""

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import reduce
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import (
    Case,
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from apps.consent.selectors import consent_event_counts_by_withdrawal
from apps.core.db import count_rows
from apps.core.i18n import texts_in_language
from apps.customers.models import Customer, CustomerStatus
from apps.customers.selectors import customer_ids_restricted
from apps.retention import clocks
from apps.retention.clocks import clock_key
from apps.retention.models import (
    Action,
    Covers,
    DisposalLogEntry,
    DisposalProgress,
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


def hold_covering_customer(*, customer: Customer) -> LegalHold | None:
    """The active legal hold, if any, that keeps the data an erasure of `customer`
    would destroy (their personal data): a hold on them; a hold on all customers'
    personal data; on closed accounts, theirs being closed; on inactive customers,
    when an enabled policy counts them as such."""
    now = timezone.now()
    holds = holds_active(at=now).order_by("placed_at")
    kinds = [Covers.CUSTOMER_PII]
    if customer.status == CustomerStatus.CLOSED:
        kinds.append(Covers.CLOSED_ACCOUNTS)
    idle = any(
        SCOPES[policy.covers].due(policy, at=now).filter(pk=customer.pk).exists()
        for policy in policy_list(enabled_only=True).filter(
            covers=Covers.INACTIVE_CUSTOMERS
        )
    )
    if idle:
        kinds.append(Covers.INACTIVE_CUSTOMERS)
    return holds.filter(Q(customer_id=customer.pk) | Q(covers__in=kinds)).first()


def hold_list() -> QuerySet[LegalHold]:
    return LegalHold.objects.select_related("placed_by", "released_by").order_by(
        "released_at", "-placed_at"
    )


def hold_get(*, hold_id: int) -> LegalHold | None:
    return LegalHold.objects.filter(pk=hold_id).first()


def policy_list(
    *, enabled_only: bool = False, covers: str = ""
) -> QuerySet[RetentionPolicy]:
    """The policies by code; `covers`: only those of that kind of record."""
    policies = RetentionPolicy.objects.all()
    if covers:
        policies = policies.filter(covers=covers)
    return policies.filter(enabled=True) if enabled_only else policies


@dataclass(frozen=True)
class PolicyText:
    description: str
    legal_basis: str
    language: str


def policy_text(policy: RetentionPolicy, language: str | None) -> PolicyText:
    """The policy's description and legal basis in one whole language: `language` if
    written, else English (the source)."""
    texts, chosen = texts_in_language(
        source={"description": policy.description, "legal_basis": policy.legal_basis},
        translations=policy.translations,
        language=language,
    )
    return PolicyText(texts["description"], texts["legal_basis"], chosen)


def policy_get(*, code: str) -> RetentionPolicy | None:
    return RetentionPolicy.objects.filter(code=code).first()


def _held_customers(holds: QuerySet[LegalHold], field: str) -> Q:
    """Rows (their customer in `field`) kept for a customer: a legal hold on them, or
    their data restricted (GDPR art. 18: stored, kept for the restriction's stated
    purpose), which holds like a legal hold until it is lifted."""
    held_customers = holds.filter(customer__isnull=False).values("customer_id")
    return Q(**{f"{field}__in": held_customers}) | Q(
        **{f"{field}__in": customer_ids_restricted()}
    )


def _held_customer_ids(holds: QuerySet[LegalHold]) -> QuerySet:
    """`_held_customers` as one subquery of customer ids."""
    # No ordering in either part: SQLite allows no ORDER BY inside a compound
    # statement, and a set of ids needs none.
    return (
        holds.filter(customer__isnull=False)
        .order_by()
        .values("customer_id")
        .union(customer_ids_restricted().order_by())
    )


def _held_filter(policy: RetentionPolicy, at: datetime) -> Q:
    """Rows under a legal hold: the whole kind, or their customer (a hold on them, or
    a restriction of their data)."""
    holds = holds_active(at=at)
    if holds.filter(covers=policy.covers).exists():
        return Q(pk__isnull=False)  # everything
    return _held_customers(holds, SCOPES[policy.covers].customer_field)


def policy_kind_held(policy: RetentionPolicy, *, at: datetime | None = None) -> bool:
    """Whether an active legal hold covers the policy's whole kind of record."""
    return holds_active(at=at).filter(covers=policy.covers).exists()


def rows_held_exist(
    policy: RetentionPolicy, rows: QuerySet, *, at: datetime | None = None
) -> bool:
    """Whether any of `rows` (the policy's kind) is under a legal hold or belongs to a
    restricted customer (`_held_filter`)."""
    holds = holds_active(at=at or timezone.now())
    if holds.filter(covers=policy.covers).exists():
        return rows.exists()
    # One IN over the held customers' ids (few): PostgreSQL probes the rows' index on
    # the customer for each; two INs joined by OR (`_held_customers`) cannot become a
    # join and read every row (9 s for a month of 1,750,000 access-log rows).
    field = SCOPES[policy.covers].customer_field
    return rows.filter(**{f"{field}__in": _held_customer_ids(holds)}).exists()


# The order in which a run disposes of what more than one policy covers: whole
# customers first (closed accounts, then inactive ones), then categories of their data,
# then records. Data due under two policies is disposed of once, under the first: a
# later policy leaves what an earlier one takes (a shredded customer is not also
# anonymised; the notes of a shredded customer went with the key; the access log of a
# deleted customer went with the customer). So what a policy disposes of does not depend
# on which policy's batches run first, in one process or on many workers.
RUN_ORDER = (
    Covers.CLOSED_ACCOUNTS,
    Covers.INACTIVE_CUSTOMERS,
    Covers.CUSTOMER_PII,
    Covers.ACCESS_LOG,
    Covers.CONSENT_EVENTS,
    Covers.INTERACTIONS,
)
WHOLE_CUSTOMER = {Covers.CLOSED_ACCOUNTS, Covers.INACTIVE_CUSTOMERS}


def _run_position(policy: RetentionPolicy) -> tuple[int, str]:
    return RUN_ORDER.index(policy.covers), policy.code


def policies_in_run_order() -> list[RetentionPolicy]:
    """The enabled policies, in the order a run disposes under them."""
    return sorted(policy_list(enabled_only=True), key=_run_position)


def _due_not_held(policy: RetentionPolicy, at: datetime) -> QuerySet:
    return SCOPES[policy.covers].due(policy, at=at).exclude(_held_filter(policy, at))


def _same_rows(earlier: RetentionPolicy, later: RetentionPolicy) -> bool:
    """Whether disposing of `earlier`'s rows disposes of the same rows of `later`."""
    if earlier.covers in WHOLE_CUSTOMER:
        return later.covers in WHOLE_CUSTOMER or later.covers == Covers.CUSTOMER_PII
    if earlier.covers == Covers.CUSTOMER_PII:
        return (later.covers, later.category) == (earlier.covers, earlier.category)
    return later.covers == earlier.covers


def _taken_earlier(
    policy: RetentionPolicy, before: list[RetentionPolicy], at: datetime
) -> list[Exists]:
    """`policy`'s rows that a policy before it in the run disposes of first: one
    condition per such policy."""
    customer_field = SCOPES[policy.covers].customer_field
    taken = []
    for index, earlier in enumerate(before):
        if _same_rows(earlier, policy):
            rows = _due_not_held(earlier, at).filter(pk=OuterRef("pk"))
            taken.append(Exists(rows))
        elif earlier.covers in WHOLE_CUSTOMER and earlier.action == Action.DELETE:
            # Deleting a customer deletes every record that names them; only the
            # customers this policy deletes, not those an earlier one shreds.
            deleted = _disposable_after(earlier, before[:index], at)
            taken.append(Exists(deleted.filter(pk=OuterRef(customer_field))))
    return taken


def _disposable_after(
    policy: RetentionPolicy, before: list[RetentionPolicy], at: datetime
) -> QuerySet:
    rows = _due_not_held(policy, at)
    for condition in _taken_earlier(policy, before, at):
        rows = rows.exclude(condition)  # NOT EXISTS each: anti-joins
    return rows


def _taken_rows(
    policy: RetentionPolicy, before: list[RetentionPolicy], at: datetime
) -> QuerySet | None:
    """`policy`'s due rows that an earlier policy disposes of; None: there are none."""
    taken = _taken_earlier(policy, before, at)
    if not taken:
        return None
    either = reduce(operator.or_, (Q(condition) for condition in taken))
    return _due_not_held(policy, at).filter(either)


def _before(policy: RetentionPolicy) -> list[RetentionPolicy]:
    """The enabled policies a run disposes under before `policy`."""
    return [
        p
        for p in policies_in_run_order()
        if p.pk != policy.pk and _run_position(p) < _run_position(policy)
    ]


def disposable(policy: RetentionPolicy, *, at: datetime | None = None) -> QuerySet:
    """Rows due now under the policy, not held, and not disposed of first under an
    earlier policy of the run (RUN_ORDER): what a run disposes of under it."""
    at = at or timezone.now()
    return _disposable_after(policy, _before(policy), at)


@dataclass(frozen=True)
class PolicyTally:
    """One policy's share of a disposal: rows, and the customers they belong to."""

    policy: RetentionPolicy
    rows: int
    customers: int
    # Dry run only: customers due under this policy too, disposed of under an earlier.
    earlier: int = 0


@dataclass(frozen=True)
class DisposalTally:
    """A disposal per policy, in run order, and the distinct customers of all of it
    (a customer with records under several policies counts once)."""

    policies: list[PolicyTally]
    customers: int
    # Dry run only: customers due under more than one policy for the same data.
    overlapping: int = 0

    @property
    def rows(self) -> int:
        return sum(line.rows for line in self.policies)


def _customers_of(rows: QuerySet, policy: RetentionPolicy) -> QuerySet:
    field = SCOPES[policy.covers].customer_field
    return rows.order_by().values_list(field, flat=True).distinct()


def _distinct_count(querysets: list[QuerySet]) -> int:
    if not querysets:
        return 0
    if len(querysets) == 1:
        return querysets[0].count()
    return querysets[0].union(*querysets[1:]).count()


def disposal_forecast(*, at: datetime | None = None) -> DisposalTally:
    """What a run would dispose of now, per policy in run order, in the terms a run
    reports (`disposal_run_tally`); with the customers due under more than one policy
    for the same data, which the run disposes of once."""
    at = at or timezone.now()
    order = policies_in_run_order()
    lines, customers, overlapping = [], [], []
    for index, policy in enumerate(order):
        before = order[:index]
        rows = _disposable_after(policy, before, at)
        taken = _taken_rows(policy, before, at)
        earlier = 0
        if taken is not None:
            also = _customers_of(taken, policy)
            earlier = also.count()
            overlapping.append(also)
        mine = _customers_of(rows, policy)
        customers.append(mine)
        lines.append(PolicyTally(policy, rows.count(), mine.count(), earlier))
    return DisposalTally(
        lines, _distinct_count(customers), _distinct_count(overlapping)
    )


# A disposal-log entry for a whole partition dropped (the access log's months): one
# row for all its records, whose customers are not known one by one (hashing each
# would cost what dropping the partition saves), so it counts in no customer count.
PARTITION_REF = "partition:"


def _per_customer(entries: QuerySet[DisposalLogEntry]) -> QuerySet[DisposalLogEntry]:
    return entries.exclude(subject_ref__startswith=PARTITION_REF)


def run_partitions_dropped(run: DisposalRun) -> list[str]:
    """The partitions a run dropped whole, by name (their disposal-log entries)."""
    refs = DisposalLogEntry.objects.filter(
        run=run, subject_ref__startswith=PARTITION_REF
    ).values_list("subject_ref", flat=True)
    return sorted(ref.removeprefix(PARTITION_REF) for ref in refs)


def disposal_run_tally(run: DisposalRun) -> DisposalTally:
    """What a run disposed of, per policy in run order: rows, and customers counted
    by the disposal log's keyed references (one per customer; a dropped partition's
    rows count in rows, not in customers: `PARTITION_REF`)."""
    per_policy = dict(
        _per_customer(DisposalLogEntry.objects.filter(run=run))
        .values("policy")
        .annotate(customers=Count("subject_ref", distinct=True))
        .values_list("policy", "customers")
    )
    customers = _per_customer(DisposalLogEntry.objects.filter(run=run)).aggregate(
        n=Count("subject_ref", distinct=True)
    )["n"]
    progress = sorted(
        DisposalProgress.objects.filter(run=run).select_related("policy"),
        key=lambda p: _run_position(p.policy),
    )
    return DisposalTally(
        [
            PolicyTally(p.policy, p.disposed, per_policy.get(p.policy_id, 0))
            for p in progress
        ],
        customers,
    )


def _window_counts(policy: RetentionPolicy, at: datetime) -> dict[str, int]:
    """Each policy by its own rule: data due under two policies is overdue under both
    (a run disposes of it once, under the first: `disposal_forecast` says how much)."""
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
    """`_window_counts` for consent events, whose clock is their consent's withdrawal:
    every window in one pass over the withdrawn consents that can fall due within 90
    days (consent's `consent_event_counts_by_withdrawal`)."""
    period = timedelta(days=policy.period_days)

    def limit(days: int) -> datetime:
        return at + timedelta(days=days) - period

    holds = holds_active(at=at)
    whole_kind = holds.filter(covers=policy.covers).exists()
    counts = consent_event_counts_by_withdrawal(
        windows={
            "due_30": (limit(0), limit(30)),
            "due_60": (limit(0), limit(60)),
            "due_90": (limit(0), limit(90)),
            "overdue": (None, limit(0)),
        },
        customers=None if whole_kind else _held_customer_ids(holds),
    )
    overdue, held = counts["overdue"]
    if whole_kind:
        held = overdue
    return {
        "held": SCOPES[policy.covers].rows(policy).count(),
        "due_30": counts["due_30"][0],
        "due_60": counts["due_60"][0],
        "due_90": counts["due_90"][0],
        "overdue": overdue - held,
        "on_hold": held,
    }


# The report from the clock histograms (PostgreSQL: apps/retention/clocks.py). A window
# has exact bounds (`at` + d - period): the whole days before a bound's day are summed
# from the histogram, and only that day's rows up to the bound are counted (an index
# range of one day). What is held is counted from the held customers' own rows.

REPORT_WINDOWS = {"overdue": 0, "due_30": 30, "due_60": 60, "due_90": 90}


@dataclass(frozen=True)
class _ClockReading:
    """What every policy's counts read from the histograms share: the histograms
    of their keys, the active holds, and the kinds of record held whole."""

    histograms: dict[str, dict]
    holds: QuerySet[LegalHold]
    whole_kinds: frozenset[str]


def _clock_reading(policies: list[RetentionPolicy], at: datetime) -> _ClockReading:
    names = {key.name for key in map(clock_key, policies) if key is not None}
    if any(p.covers == Covers.CONSENT_EVENTS for p in policies):
        names.add(clocks.ALL_CONSENT_EVENTS)
    holds = holds_active(at=at)
    whole = holds.exclude(covers="").order_by().values_list("covers", flat=True)
    return _ClockReading(clocks.histograms(names), holds, frozenset(whole))


def _clock_plan(
    policy: RetentionPolicy,
    at: datetime,
    reading: _ClockReading,
    windows: tuple[str, ...],
) -> tuple[list[tuple[str, list[Any]]], Callable[[list[int]], dict[str, int]]] | None:
    """The counts `_window_counts` makes, from the histograms (only `windows`'
    columns, "overdue" always among them): the statements still to count from the
    rows (each bound's day up to the bound; the held customers' due rows), and what
    makes the columns of their counts. None: no histogram counts this policy's rows
    (then they are counted directly)."""
    key = clock_key(policy)
    if key is None:
        return None
    histogram = reading.histograms[key.name]
    period = timedelta(days=policy.period_days)
    bounds = [at + timedelta(days=REPORT_WINDOWS[name]) - period for name in windows]
    statements = [
        clocks.count_sql(
            key, since=clocks.day_start(b), before=b + clocks.ONE_MICROSECOND
        )
        for b in bounds
    ]
    whole_kind = policy.covers in reading.whole_kinds
    if not whole_kind:
        statements.append(
            clocks.count_sql(
                key,
                since=None,
                before=at - period + clocks.ONE_MICROSECOND,
                customers=_held_customer_ids(reading.holds),
            )
        )

    def columns(counts: list[int]) -> dict[str, int]:
        upto = {
            name: clocks.count_before_day(histogram, clocks.day_start(b).date()) + today
            for name, b, today in zip(windows, bounds, counts, strict=False)
        }
        held = upto["overdue"] if whole_kind else counts[-1]
        result = {"overdue": upto["overdue"] - held, "on_hold": held}
        if windows == ("overdue",):
            return result
        everything = (
            reading.histograms[clocks.ALL_CONSENT_EVENTS]
            if policy.covers == Covers.CONSENT_EVENTS
            else histogram
        )
        return {
            "held": sum(everything.values()),
            "due_30": upto["due_30"] - upto["overdue"],
            "due_60": upto["due_60"] - upto["overdue"],
            "due_90": upto["due_90"] - upto["overdue"],
            **result,
        }

    return statements, columns


def _clock_counts(
    policies: list[RetentionPolicy],
    at: datetime,
    *,
    windows: tuple[str, ...] = tuple(REPORT_WINDOWS),
) -> dict[int, dict[str, int]]:
    """Per policy id, its counts from the histograms (`_clock_plan`), in four
    queries however many policies: the histograms, the holds, the kinds held
    whole, and every policy's rows of its bounds' days and of its held customers
    in one statement. Policies no histogram counts are left out."""
    reading = _clock_reading(policies, at)
    plans = {p.pk: _clock_plan(p, at, reading, windows) for p in policies}
    statements = [s for plan in plans.values() if plan for s in plan[0]]
    counts = iter(clocks.counts_at_once(statements))
    return {
        pk: plan[1]([next(counts) for _ in plan[0]])
        for pk, plan in plans.items()
        if plan is not None
    }


def _disposed_totals() -> dict[int, int]:
    """Records disposed so far per policy id: from the runs' progress (a row per
    run and policy, written with each batch and its disposal-log rows), not a scan
    of the disposal log."""
    return dict(
        DisposalProgress.objects.values("policy")
        .annotate(total=Sum("disposed"))
        .values_list("policy", "total")
    )


def retention_report(*, at: datetime | None = None) -> dict[str, Any]:
    """Per policy, in run order: records held, due within 30/60/90 days, overdue
    (should be zero), on legal hold, disposed so far. On PostgreSQL from the clock
    histograms (apps/retention/clocks.py), elsewhere counted from the rows
    (`retention_report_recount`)."""
    at = at or timezone.now()
    if not clocks.clock_counts_enabled():
        return retention_report_recount(at=at)
    policies = policies_in_run_order()
    counted = _clock_counts(policies, at)
    disposed = _disposed_totals()
    lines = []
    for policy in policies:
        counts = counted.get(policy.pk) or _window_counts(policy, at)
        lines.append(_report_line(policy, counts, disposed))
    return {"generated_at": at.isoformat(), "policies": lines}


def _report_line(
    policy: RetentionPolicy, counts: dict[str, int], disposed: dict[int, int]
) -> dict[str, Any]:
    return {
        "code": policy.code,
        "covers": policy.covers,
        "action": policy.action,
        "period_days": policy.period_days,
        **counts,
        "disposed_total": disposed.get(policy.pk, 0),
    }


REPORT_COLUMNS = (
    "held",
    "due_30",
    "due_60",
    "due_90",
    "overdue",
    "on_hold",
    "disposed_total",
)


def retention_report_differences(*, at: datetime | None = None) -> list[str]:
    """Where the report (`retention_report`) and a recount from the rows
    (`retention_report_recount`) differ at the same time: one line per policy and
    column. Empty: they agree. Rows written between the two readings differ too."""
    at = at or timezone.now()
    report = {line["code"]: line for line in retention_report(at=at)["policies"]}
    recount = retention_report_recount(at=at)["policies"]
    differences = []
    for line in recount:
        mine = report.get(line["code"])
        if mine is None:
            differences.append(f"{line['code']}: missing from the report")
            continue
        for column in REPORT_COLUMNS:
            if mine[column] != line[column]:
                differences.append(
                    f"{line['code']} {column}: report {mine[column]}, "
                    f"recount {line[column]}"
                )
    return differences


def retention_report_recount(*, at: datetime | None = None) -> dict[str, Any]:
    """`retention_report` counted from every row of every policy's scope, and the
    disposed totals from the disposal log: the report on SQLite, and what
    `retention_report --verify` compares the histograms with."""
    at = at or timezone.now()
    disposed = dict(
        DisposalLogEntry.objects.values("policy")
        .annotate(total=Sum("records"))
        .values_list("policy", "total")
    )
    policies = []
    for policy in policies_in_run_order():
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
    """The last runs, each with `customers`: the distinct customers it disposed of
    in batches (a dropped partition's are not counted: `PARTITION_REF`)."""
    customers = (
        _per_customer(DisposalLogEntry.objects.filter(run=OuterRef("pk")))
        .order_by()
        .values("run")
        .annotate(n=Count("subject_ref", distinct=True))
        .values("n")
    )
    return (
        DisposalRun.objects.prefetch_related("progress__policy")
        .annotate(customers=Coalesce(Subquery(customers), 0))
        .order_by("-started_at")[:limit]
    )


def disposal_run_get(*, run_id: int) -> DisposalRun | None:
    return DisposalRun.objects.filter(pk=run_id).first()


def disposal_scheduled_at() -> time:
    """When the nightly disposal job runs, in TIME_ZONE: AMANAH_DISPOSAL_AT, which
    also sets the beat schedule (config/settings). Raises ImproperlyConfigured."""
    value = settings.AMANAH_DISPOSAL_AT
    try:
        return time.fromisoformat(value)
    except (TypeError, ValueError):
        raise ImproperlyConfigured(
            "AMANAH_DISPOSAL_AT (or AMANAH_MONITOR_DISPOSAL_AT, its former name) "
            f"must be HH:MM, not {value!r}"
        ) from None


def _count_of(rows: QuerySet) -> Subquery:
    """`SELECT count(*)` of `rows` as a scalar subquery."""
    counted = rows.order_by().annotate(n=count_rows())
    return Subquery(counted.values("n"), output_field=IntegerField())


def policy_overdue_counts(
    *, at: datetime | None = None
) -> list[tuple[RetentionPolicy, int]]:
    """Per enabled policy, in run order, what `retention_report` counts as overdue:
    rows due under the policy's own rule and not on legal hold (nor restricted). On
    PostgreSQL from the clock histograms, as the report: four queries however many
    policies there are, none reading more than a bound's day of rows or the held
    customers' rows. Elsewhere two, each count reading the due rows through the
    index on the policy's clock."""
    at = at or timezone.now()
    policies = policies_in_run_order()
    if not policies:
        return []
    holds = holds_active(at=at)
    counted: dict[int, int] = {}
    if clocks.clock_counts_enabled():
        # From the clock histograms, as `retention_report`.
        counted = {
            pk: counts["overdue"]
            for pk, counts in _clock_counts(policies, at, windows=("overdue",)).items()
        }
    whens = []
    for policy in policies:
        if policy.pk in counted:
            continue
        scope = SCOPES[policy.covers]
        held = Q(Exists(holds.filter(covers=policy.covers))) | _held_customers(
            holds, scope.customer_field
        )
        rows = scope.due(policy, at=at).filter(~held)
        whens.append(When(pk=policy.pk, then=_count_of(rows)))
    if whens:
        counted.update(
            RetentionPolicy.objects.filter(pk__in=[p.pk for p in policies])
            .exclude(pk__in=list(counted))
            .annotate(overdue=Case(*whens, default=Value(0)))
            .values_list("pk", "overdue")
        )
    return [(policy, counted[policy.pk]) for policy in policies]


def disposal_run_last() -> DisposalRun | None:
    """The latest disposal run, with `records`: what it disposed of so far (the sum
    of its progress, one row per policy)."""
    return (
        DisposalRun.objects.annotate(records=Coalesce(Sum("progress__disposed"), 0))
        .order_by("-started_at", "-pk")
        .first()
    )
