"""Writes for retention: policies, legal holds, erasure, and the disposal engine.

The engine works in batches ordered by primary key, each its own short transaction,
taking rows with SELECT ... FOR UPDATE SKIP LOCKED, so any number of workers share a run
without doing a row twice. What is due is decided by SQL; a disposed row stops matching,
which makes every batch idempotent and a run resumable after a crash.

Legal holds and what destroys data are serialised by one advisory lock
(`holds_freeze`): placing a hold takes it exclusively, an erasure and a disposal batch
take it shared, so a hold is either seen by an erasure or placed after the erasure has
committed, never in between.

Lock order (apps/core/db.py): the holds' advisory lock first. A batch then locks the
rows it disposes of (FOR UPDATE, as some are deleted), then what goes with them (the
records that name them, their data keys, their sign-in accounts), and never the audit
chain; an erasure locks the customer (through the customers service), then its data
key, then the audit chain; a run, a policy or a hold is locked on its own, then the
audit chain.
"""

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.access.selectors import access_log_in_month, access_log_months
from apps.access.services import (
    access_log_month_detach,
    access_log_months_disposed_drop,
)
from apps.accounts.models import User
from apps.audit import services as audit
from apps.core.db import (
    TransactionOverBudget,
    advisory_xact_lock,
    bulk_insert,
    declare_disposal,
    transaction_time_bounded,
)
from apps.core.i18n import translations_check
from apps.core.partitions import Partition, PartitionBusy
from apps.core.reasons import reason_require
from apps.crypto.blind import blind_index
from apps.customers.models import Customer
from apps.customers.services import customer_lock, customer_shred, free_text_check
from apps.retention import clocks, walk
from apps.retention.errors import HoldConflict, RetentionError
from apps.retention.models import (
    ALLOWED,
    POLICY_TEXT_FIELDS,
    Covers,
    DisposalLogEntry,
    DisposalProgress,
    DisposalRun,
    LegalHold,
    RetentionPolicy,
    RunStatus,
)
from apps.retention.scopes import SCOPES, dispose
from apps.retention.selectors import (
    PARTITION_REF,
    DisposalTally,
    disposable,
    disposal_forecast,
    disposal_run_get,
    disposal_run_tally,
    hold_covering_customer,
    policies_in_run_order,
    policy_kind_held,
    policy_list,
    rows_held_exist,
    run_partitions_dropped,
)

logger = logging.getLogger(__name__)

POLICY_FIELDS = (
    "covers",
    "category",
    "period_days",
    "trigger",
    "action",
    "legal_basis",
    "description",
    "translations",
    "enabled",
)


def subject_ref(customer_id: Any) -> str:
    """A keyed hash of a customer id: links disposal records to each other, never to a
    person (the key is outside the database)."""
    return blind_index("retention.subject", str(customer_id))


# Policies ----------------------------------------------------------------------------


def _validate_policy(data: dict[str, Any]) -> None:
    covers, trigger, action = (
        data.get("covers"),
        data.get("trigger"),
        data.get("action"),
    )
    if covers not in ALLOWED:
        raise RetentionError("Choose what the policy covers.", field="covers")
    triggers, actions = ALLOWED[covers]
    if trigger not in triggers:
        raise RetentionError(
            "That clock does not apply to this kind of record; use "
            + " or ".join(sorted(triggers))
            + ".",
            field="trigger",
        )
    if action not in actions:
        raise RetentionError(
            "That action does not apply; use " + " or ".join(sorted(actions)) + ".",
            field="action",
        )
    if covers == Covers.CUSTOMER_PII and not data.get("category"):
        raise RetentionError("Name the data category.", field="category")
    if not data.get("period_days") or int(data["period_days"]) < 1:
        raise RetentionError("The period is at least one day.", field="period_days")
    if not (data.get("legal_basis") or "").strip():
        raise RetentionError("State the legal basis.", field="legal_basis")
    if "translations" in data:
        try:
            translations_check(data["translations"], fields=POLICY_TEXT_FIELDS)
        except ValidationError as exc:
            raise RetentionError(
                " ".join(exc.message_dict["translations"]), field="translations"
            ) from None


@transaction.atomic
def policy_save(*, actor: User, code: str, data: dict[str, Any]) -> RetentionPolicy:
    """Create or change a retention policy; audited with what changed."""
    _validate_policy(data)
    policy = (
        RetentionPolicy.objects.select_for_update(no_key=True).filter(code=code).first()
    )
    before = {f: getattr(policy, f) for f in POLICY_FIELDS} if policy else {}
    policy = policy or RetentionPolicy(code=code)
    for name in POLICY_FIELDS:
        if name in data:
            setattr(policy, name, data[name])
    policy.save()
    after = {f: getattr(policy, f) for f in POLICY_FIELDS}
    changed = sorted(f for f in POLICY_FIELDS if before.get(f) != after[f])
    if changed:
        audit.record(
            actor=actor,
            action="retention.policy_changed" if before else "retention.policy_created",
            target=policy,
            details={
                "code": code,
                "changed": changed,
                "period_days": policy.period_days,
                "action": policy.action,
                "enabled": policy.enabled,
            },
        )
    return policy


# Legal holds -------------------------------------------------------------------------

_HOLDS_LOCK = "retention.holds"


def holds_freeze() -> None:
    """Keep new legal holds out until the transaction ends (a shared advisory lock,
    taken first): what a transaction that destroys data saw of the holds stays true
    until it commits. A hold being placed is waited for, and then seen."""
    advisory_xact_lock(_HOLDS_LOCK, shared=True)


@transaction.atomic
def hold_place(
    *,
    actor: User,
    reason: str,
    customer: Customer | None = None,
    covers: str = "",
    ends_at: datetime | None = None,
) -> LegalHold:
    """Hold one customer's data, or a whole kind of record. Raises RetentionError."""
    reason = reason_require(
        reason,
        field="reason",
        message="Give the reason (at least {min} characters).",
        error=RetentionError,
    )
    # Kept in the audit trail for good, and, for a hold on one customer, shown to them
    # when it holds back their erasure (a hold on a kind of record is not shown:
    # requests.services._held_outcome): never the customer's data.
    free_text_check(
        text=reason, field="reason", customer=customer, error=RetentionError
    )
    if (customer is None) == (not covers):
        raise RetentionError(
            "Hold either one customer or one kind of record.", field="covers"
        )
    if covers and covers not in Covers.values:
        raise RetentionError("Unknown kind of record.", field="covers")
    if ends_at is not None and ends_at <= timezone.now():
        raise RetentionError("The end must be in the future.", field="ends_at")
    # First: an erasure or a disposal batch under way commits before the hold exists,
    # and later ones see it.
    advisory_xact_lock(_HOLDS_LOCK)
    hold = LegalHold.objects.create(
        customer=customer,
        covers=covers,
        reason=reason,
        placed_by=actor,
        placed_at=timezone.now(),
        ends_at=ends_at,
    )
    audit.record(
        actor=actor,
        action="legal_hold.placed",
        target=hold,
        details={
            "customer": str(customer.pk) if customer else "",
            "covers": covers,
            "reason": reason,
            "ends_at": ends_at.isoformat() if ends_at else "",
        },
    )
    return hold


@transaction.atomic
def hold_release(*, actor: User, hold: LegalHold) -> LegalHold:
    """End a legal hold now. Raises RetentionError."""
    hold = LegalHold.objects.select_for_update(no_key=True).get(pk=hold.pk)
    if hold.released_at is not None:
        raise RetentionError("This hold was already released.")
    hold.released_at = timezone.now()
    hold.released_by = actor
    hold.save(update_fields=["released_at", "released_by"])
    audit.record(actor=actor, action="legal_hold.released", target=hold)
    return hold


# Erasure -----------------------------------------------------------------------------

HELD_MESSAGE = (
    "A legal hold applies to this customer: their data cannot be erased until the "
    "hold is released or ends."
)


@transaction.atomic
def customer_erase(
    *,
    actor: User | None,
    customer: Customer,
    cause: str = "request",
    request_id: Any = None,
) -> Customer:
    """Crypto-shred a customer unless a legal hold keeps their data: every erasure
    (the API, the admin, an erasure request: `request_id`) comes here. Raises
    HoldConflict (the hold's reason is not repeated: it is for staff with the holds
    page), CustomerConflict, NotFound."""
    holds_freeze()
    customer = customer_lock(customer_id=customer.pk)
    if hold_covering_customer(customer=customer) is not None:
        raise HoldConflict(HELD_MESSAGE, code="legal_hold")
    return customer_shred(
        actor=actor, customer=customer, cause=cause, request_id=request_id
    )


# The disposal engine -----------------------------------------------------------------


def purge_dry_run() -> DisposalTally:
    """What a run would dispose of now, per policy in run order, in the terms the run
    reports afterwards. Changes nothing."""
    return disposal_forecast()


def disposal_batch_execute(
    *,
    run_id: int,
    policy_id: int,
    batch_size: int,
    cursor: walk.BatchCursor | None = None,
) -> tuple[int, walk.BatchCursor | None]:
    """Dispose of one batch for one policy in its own transaction; rows other workers
    hold are skipped. Returns how many rows were disposed and the cursor of the next
    batch (None: nothing left for this worker; one with `waits`: due rows are held
    elsewhere, look again after `walk.SWEEP_PAUSE`)."""
    cursor = cursor or walk.BatchCursor()
    policy = RetentionPolicy.objects.get(pk=policy_id)
    scope = SCOPES[policy.covers]
    # A chain's first step with nothing due ends it at once. In the clock's order an
    # index on the clock answers from the due rows alone; the key-range walk would read
    # the whole table to find none (the access log's, once its due months are dropped).
    if cursor == walk.BatchCursor() and not _due_any(policy):
        return 0, None
    limit = cursor.batch_rows(batch_size)
    span = cursor.span or walk.SPAN_START * limit
    started = time.monotonic()
    bound = walk.time_bound(cursor, settings.AMANAH_DISPOSAL_TRANSACTION_SECONDS)
    try:
        with transaction.atomic(), transaction_time_bounded(bound):
            holds_freeze()  # the due query below sees every hold placed before it
            declare_disposal()
            in_range, upper = walk.batch_range(scope.rows(policy).model, cursor, span)
            # A sweep has no key range: it reads in the clock's order (`sweep_order`).
            order = scope.sweep_order(policy) if cursor.sweep else ["pk"]
            rows = list(
                disposable(policy)
                .filter(in_range)
                .select_for_update(skip_locked=True, of=("self",))
                .order_by(*order)
                .values_list("pk", scope.customer_field)[:limit]
            )
            taken = [pk for pk, _ in rows]
            following = walk.next_cursor(
                cursor, span=span, taken=taken, upper=upper, batch_size=limit
            )
            if not rows:
                # A sweep that could lock nothing, with rows still due: other
                # transactions hold them (`walk.SWEEP_WAITS`).
                # In the sweep's order (`exists()` would drop it, and an unordered
                # look may read the whole table to find nothing).
                due = disposable(policy).order_by(*order).values_list("pk", flat=True)
                if following is None and due.first() is not None:
                    following = walk.sweep_again(cursor)
                # An empty look took no rows: the batch's size stands.
                return 0, walk.rows_keep(following, cursor)
            dispose(policy, taken)
            disposal_log_write(
                run_id=run_id,
                policy=policy,
                per_customer=Counter(customer_id for _, customer_id in rows),
            )
            DisposalProgress.objects.filter(run_id=run_id, policy=policy).update(
                disposed=F("disposed") + len(rows), batches=F("batches") + 1
            )
    except TransactionOverBudget:
        logger.warning(
            "retention.batch_over_time",
            extra={
                "run_id": run_id,
                "policy": policy.code,
                "rows": limit,
                "seconds": round(time.monotonic() - started, 3),
            },
        )
        return 0, walk.rows_after_overrun(cursor, rows=limit)
    seconds = time.monotonic() - started
    logger.info(
        "retention.batch_done",
        extra={
            "run_id": run_id,
            "policy": policy.code,
            "count": len(rows),
            "seconds": round(seconds, 3),
        },
    )
    following = walk.rows_next(
        following,
        rows=limit,
        taken=len(rows),
        seconds=seconds,
        most=batch_size,
        aim=settings.AMANAH_DISPOSAL_BATCH_SECONDS,
    )
    return len(rows), following


def _due_any(policy: RetentionPolicy) -> bool:
    """Whether any row is due under the policy now (held ones are not); True, without
    asking, where the clock is not a column of the rows (consent events: their
    consent's withdrawal): that look would be one unbounded statement."""
    scope = SCOPES[policy.covers]
    if scope.clock_field(policy) is None:
        return True
    order = scope.sweep_order(policy)
    return disposable(policy).order_by(*order).values_list("pk").first() is not None


_PARTITIONS_LOCK = "retention.partitions"


def disposal_months_drop(run: DisposalRun) -> dict[str, int]:
    """The access log's wholly due months dropped for the run's unfinished access-log
    policies, before any of its chains starts: a chain of another policy deleting
    customers writes through the log and would hold up the month's lock
    (`access_log_months_dispose`), leaving the month to the batches. Returns the rows
    dropped per policy code."""
    dropped = {}
    for progress in run.progress.filter(
        finished=False, policy__covers=Covers.ACCESS_LOG, policy__enabled=True
    ).select_related("policy"):
        dropped[progress.policy.code] = access_log_months_dispose(
            run_id=run.pk, policy=progress.policy
        )
    return dropped


def access_log_months_dispose(
    *, run_id: int, policy: RetentionPolicy, at: datetime | None = None
) -> int:
    """Drop the access log's whole monthly partitions that are wholly due under the
    policy (their end at or before now less its period) and hold no row under a legal
    hold or of a restricted customer; each in its own short transaction, with a
    disposal-log row (`PARTITION_REF` and the partition's name; its records) and the
    run's progress. A month a hold touches, or whose lock is not granted in time
    (PartitionBusy), is left to the batches. Returns the rows dropped; 0 on SQLite
    and under a hold on the whole access log."""
    at = at or timezone.now()
    cutoff = at - timedelta(days=policy.period_days)
    if policy_kind_held(policy, at=at):
        return 0
    # Months detached by a run that stopped before dropping them: nothing of them is
    # live (their disposal is logged), only their files are left.
    access_log_months_disposed_drop()
    total = 0
    for month in access_log_months(ending_by=cutoff):
        try:
            total += _access_log_month_dispose(
                run_id=run_id, policy=policy, month=month, at=at
            )
        except PartitionBusy:
            logger.warning(
                "retention.partition_busy",
                extra={"run_id": run_id, "policy": policy.code, "month": month.name},
            )
    return total


def _access_log_month_dispose(
    *, run_id: int, policy: RetentionPolicy, month: Partition, at: datetime
) -> int:
    if month.start is None or month.end is None:
        return 0  # the DEFAULT partition is never dropped whole
    with transaction.atomic():
        # Lock order: the holds' lock (shared) first, then this one: two workers of a
        # run's chains do not both try the same month.
        holds_freeze()  # no hold is placed between the check below and the drop
        advisory_xact_lock(_PARTITIONS_LOCK)
        if month.name not in {m.name for m in access_log_months()}:
            return 0  # another worker dropped it
        if rows_held_exist(policy, access_log_in_month(month=month), at=at):
            logger.info(
                "retention.partition_held",
                extra={"run_id": run_id, "policy": policy.code, "month": month.name},
            )
            return 0
        # The month is counted and detached here, with its disposal log; its files
        # go after the commit (`access_log_months_disposed_drop`), under no lock of
        # the log's.
        rows = access_log_month_detach(name=month.name)
        # Dropping fires no trigger: the clock histograms forget those days here.
        clock_counts_forget(scope="access_log", start=month.start, end=month.end)
        DisposalLogEntry.objects.create(
            run_id=run_id,
            policy=policy,
            subject_ref=f"{PARTITION_REF}{month.name}"[:64],
            action=policy.action,
            records=rows,
            disposed_at=timezone.now(),
        )
        DisposalProgress.objects.filter(run_id=run_id, policy=policy).update(
            disposed=F("disposed") + rows
        )
        # The audit chain is not taken under the log's ACCESS EXCLUSIVE lock (a
        # writer holding the chain may still have a log row to insert): its event
        # follows the commit, in a transaction of its own.
        transaction.on_commit(
            partial(
                _month_dropped_audit,
                run_id=run_id,
                policy=policy,
                month=month,
                rows=rows,
            )
        )
    access_log_months_disposed_drop()
    logger.info(
        "retention.partition_dropped",
        extra={
            "run_id": run_id,
            "policy": policy.code,
            "month": month.name,
            "count": rows,
        },
    )
    return rows


@transaction.atomic
def _month_dropped_audit(
    *, run_id: int, policy: RetentionPolicy, month: Partition, rows: int
) -> None:
    audit.record(
        actor=None,
        action="disposal.partition_dropped",
        target_type="retention.disposalrun",
        target_id=str(run_id),
        details={
            "policy": policy.code,
            "partition": month.name,
            "from": month.start.isoformat() if month.start else "",
            "to": month.end.isoformat() if month.end else "",
            "rows": rows,
        },
    )


def disposal_log_write(
    *, run_id: int, policy: RetentionPolicy, per_customer: Counter
) -> None:
    """One disposal-log row per customer of the batch (keyed hash, records), in one
    statement (`bulk_insert`)."""
    bulk_insert(
        DisposalLogEntry,
        rows=[
            (subject_ref(customer_id), count)
            for customer_id, count in per_customer.items()
        ],
        columns=("subject_ref", "records"),
        constants={
            "run_id": run_id,
            "policy_id": policy.pk,
            "action": policy.action,
            "disposed_at": timezone.now(),
        },
    )


@transaction.atomic
def disposal_run_start(*, actor: User | None, batch_size: int) -> DisposalRun:
    """Resume the unfinished run, or start one. Audited."""
    run = (
        DisposalRun.objects.select_for_update(no_key=True)
        .filter(status__in=[RunStatus.RUNNING, RunStatus.FAILED])
        .order_by("started_at")
        .first()
    )
    resumed = run is not None
    if run is None:
        run = DisposalRun.objects.create(
            started_at=timezone.now(),
            status=RunStatus.RUNNING,
            batch_size=batch_size,
            triggered_by=actor,
        )
    else:
        run.status, run.error, run.batch_size = RunStatus.RUNNING, "", batch_size
        run.save(update_fields=["status", "error", "batch_size"])
    for policy in policy_list(enabled_only=True):
        DisposalProgress.objects.get_or_create(run=run, policy=policy)
    DisposalProgress.objects.filter(run=run).update(finished=False)
    audit.record(
        actor=actor,
        action="disposal.run_resumed" if resumed else "disposal.run_started",
        target=run,
        details={"batch_size": batch_size},
    )
    return run


def disposal_policy_finished(*, run_id: int, policy_id: int) -> None:
    DisposalProgress.objects.filter(run_id=run_id, policy_id=policy_id).update(
        finished=True
    )


@transaction.atomic
def disposal_run_finish(*, run_id: int, error: str = "") -> DisposalRun | None:
    """Close the run once every policy is finished (or record its failure). Audited.
    Returns the run if this call closed it; a run that no longer exists is logged and
    skipped."""
    run = DisposalRun.objects.select_for_update(no_key=True).filter(pk=run_id).first()
    if run is None:
        logger.warning("retention.run_missing", extra={"run_id": run_id})
        return None
    if run.status == RunStatus.COMPLETED:
        return None
    if error:
        run.status, run.error = RunStatus.FAILED, error[:300]
        run.save(update_fields=["status", "error"])
        audit.record(
            actor=None,
            action="disposal.run_failed",
            target=run,
            details={"partitions_dropped": run_partitions_dropped(run)},
        )
        return run
    if run.progress.filter(finished=False).exists():
        return None
    # A chain that failed may have marked the run failed while the others finished it.
    run.status, run.finished_at, run.error = RunStatus.COMPLETED, timezone.now(), ""
    run.save(update_fields=["status", "finished_at", "error"])
    tally = disposal_run_tally(run)
    counts = {line.policy.code: line.rows for line in tally.policies}
    audit.record(
        actor=None,
        action="disposal.run_completed",
        target=run,
        details={
            "disposed": counts,
            "total": tally.rows,
            "customers": tally.customers,
            # Also in the run's own event: each month's event follows its commit
            # (`_access_log_month_dispose`), which a crash could lose.
            "partitions_dropped": run_partitions_dropped(run),
        },
    )
    return run


# Driving a run. A run is a chain of batches per policy; `disposal_chain_advance` is
# the one step of every chain, whoever takes it: this process (`purge_run`) or a
# Celery worker (`apps.retention.tasks.purge_batch_task`, which queues the next step).
# `purge_start` is the one place that chooses between the two.


def disposal_chain_advance(
    *, run_id: int, policy_id: int, cursor: walk.BatchCursor | None = None
) -> tuple[int, walk.BatchCursor | None]:
    """One batch of a run's chain for one policy; at the chain's end the policy is
    marked finished and the run closed once every policy is. Returns how many rows
    were disposed and the next batch's cursor (None: this chain is done; one with
    `waits`: take it after `walk.SWEEP_PAUSE`). A run that no longer exists is logged
    and skipped: its chain ends."""
    run = disposal_run_get(run_id=run_id)
    if run is None:
        logger.warning(
            "retention.run_missing", extra={"run_id": run_id, "policy_id": policy_id}
        )
        return 0, None
    count, following = disposal_batch_execute(
        run_id=run_id, policy_id=policy_id, batch_size=run.batch_size, cursor=cursor
    )
    if following is None:
        disposal_policy_finished(run_id=run_id, policy_id=policy_id)
        disposal_run_finish(run_id=run_id)
    return count, following


@dataclass
class RunResult:
    run: DisposalRun
    tally: DisposalTally

    @property
    def disposed(self) -> dict[str, int]:
        """Rows disposed of per policy code."""
        return {line.policy.code: line.rows for line in self.tally.policies}


def purge_run(
    *,
    actor: User | None,
    batch_size: int,
    on_batch: Callable[[str, int], None] | None = None,
) -> RunResult:
    """Run (or resume) disposal here, batch after batch, policy after policy (in run
    order, though what each disposes of does not depend on it)."""
    if batch_size < 1:
        raise RetentionError("The batch size is at least 1.", field="batch_size")
    run = disposal_run_start(actor=actor, batch_size=batch_size)
    order = {p.pk: i for i, p in enumerate(policies_in_run_order())}
    progresses = sorted(
        run.progress.select_related("policy"),
        key=lambda p: (order.get(p.policy_id, len(order)), p.policy.code),
    )
    try:
        for code, rows in disposal_months_drop(run).items():
            if rows and on_batch:
                on_batch(code, rows)
        for progress in progresses:
            cursor: walk.BatchCursor | None = walk.BatchCursor()
            while cursor is not None:
                if cursor.waits:
                    time.sleep(walk.SWEEP_PAUSE)
                count, cursor = disposal_chain_advance(
                    run_id=run.pk, policy_id=progress.policy_id, cursor=cursor
                )
                if count and on_batch:
                    on_batch(progress.policy.code, count)
    except Exception as exc:
        disposal_run_finish(run_id=run.pk, error=type(exc).__name__)
        raise
    disposal_run_finish(run_id=run.pk)  # a run with no enabled policy has no chain
    run.refresh_from_db()
    return RunResult(run=run, tally=disposal_run_tally(run))


def purge_fan_out(
    *, actor: User | None, batch_size: int, workers: int = 2
) -> DisposalRun:
    """Start (or resume) a run whose batches Celery workers take: `workers` chains per
    policy, each batch task queueing the next until nothing is due. Every policy's
    chains start at once: a run order decides what each disposes of (`disposable`),
    not which runs first."""
    # services <-> tasks: the task calls back into this module.
    from apps.retention.tasks import purge_batch_task

    run = disposal_run_start(actor=actor, batch_size=batch_size)
    try:
        disposal_months_drop(run)
    except Exception as exc:
        disposal_run_finish(run_id=run.pk, error=type(exc).__name__)
        raise
    for progress in run.progress.all():
        for _ in range(max(1, workers)):
            transaction.on_commit(
                partial(purge_batch_task.delay, run.pk, progress.policy_id)
            )
    return run


def purge_fans_out(*, here: bool = False) -> bool:
    """Whether a run's batches go to Celery workers: not when tasks run eagerly (no
    broker: this process is the worker), nor when the caller runs them `here`."""
    return not (settings.CELERY_TASK_ALWAYS_EAGER or here)


def purge_start(
    *,
    actor: User | None,
    batch_size: int,
    here: bool = False,
    on_batch: Callable[[str, int], None] | None = None,
) -> DisposalRun:
    """Run (or resume) disposal, as the nightly job and purge_expired do: fanned out
    to the workers (returns once the batches are queued; the run goes on there), or,
    where `purge_fans_out` says not, in this process to the end (`on_batch` hears of
    each batch)."""
    if purge_fans_out(here=here):
        return purge_fan_out(actor=actor, batch_size=batch_size)
    return purge_run(actor=actor, batch_size=batch_size, on_batch=on_batch).run


# Clock counts (apps/retention/clocks.py) ---------------------------------------------


def retention_counts_compact() -> int | None:
    """Fold the clock histograms' pending deltas into their compacted counts, in
    short transactions (the beat's job). Returns the deltas folded; None: another
    compaction or a rebuild is running."""
    return clocks.clock_counts_compact()


def retention_counts_rebuild() -> int:
    """Recount the clock histograms from the rows, a month of clock per transaction,
    writers going on meanwhile (after a bulk load that bypassed the triggers).
    Returns the days whose count changed. Raises RetentionError when a compaction
    or another rebuild is running."""
    try:
        return clocks.clock_counts_rebuild()
    except RuntimeError as exc:
        raise RetentionError(str(exc), code="busy") from None


def clock_counts_forget(*, scope: str, start: datetime, end: datetime) -> int:
    """Take the days [`start`, `end`) (UTC midnights) of a clock histogram (`scope`:
    "access_log", ...) to zero, as rows removed without a trigger (a dropped
    partition): in the dropping transaction, after the drop. Returns the rows
    forgotten. Raises ValueError."""
    return clocks.clock_counts_forget(scope=scope, start=start, end=end)
