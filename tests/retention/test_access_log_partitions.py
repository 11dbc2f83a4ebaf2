"""The access-log policy drops whole monthly partitions once every row in them is due
and none is held; the batches take the rest (the edge month, held customers' rows)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.access.models import AccessLogEntry
from apps.access.selectors import access_log_months
from apps.audit.models import AuditEvent
from apps.core import partitions
from apps.core.partitions import (
    PartitionBusy,
    disposed_name,
    month_next,
    month_start,
    partition_month_create,
    partition_name,
    partitions_disposed,
    partitions_ensure,
)
from apps.retention import services
from apps.retention.models import (
    DisposalLogEntry,
    DisposalProgress,
    LegalHold,
    RetentionPolicy,
)
from apps.retention.selectors import disposal_run_tally, run_list_recent
from apps.retention.services import hold_place, purge_run
from tests.customers.factories import make_customer

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

LOG = "access_accesslogentry"
# Two years back: wholly past the access-log policy's year.
OLD = datetime(timezone.now().year - 2, 3, 1, tzinfo=UTC)


def old_month() -> str:
    return partition_name(LOG, OLD)


def write(staff, customer, at: datetime) -> AccessLogEntry:
    return AccessLogEntry.objects.create(
        staff=staff,
        staff_role=staff.role,
        customer=customer,
        purpose="support",
        created_at=at,
    )


@pytest.fixture
def log(support_agent):
    """Two customers' reads in an old month with a partition of its own, one just due
    (the edge), one not due yet. Committed-looking: no checks left pending."""
    assert partition_month_create(LOG, "created_at", OLD)
    alice, bob = make_customer(), make_customer()
    rows = {
        "alices": [
            write(support_agent, alice, OLD + timedelta(days=d)) for d in (0, 9)
        ],
        "bobs": [write(support_agent, bob, OLD + timedelta(days=27))],
        "edge": write(support_agent, bob, timezone.now() - timedelta(days=366)),
        "fresh": write(support_agent, alice, timezone.now() - timedelta(days=3)),
    }
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    return {"alice": alice, "bob": bob, **rows}


def left() -> set[int]:
    return set(AccessLogEntry.objects.values_list("pk", flat=True))


def progress(run) -> int:
    return DisposalProgress.objects.get(run=run, policy__code="access-log").disposed


def test_a_wholly_due_month_is_dropped_and_the_edge_deleted_in_batches(
    log, django_capture_on_commit_callbacks, monkeypatch
):
    forgotten = []
    monkeypatch.setattr(
        services, "clock_counts_forget", lambda **kw: forgotten.append(kw) or 0
    )
    with django_capture_on_commit_callbacks(execute=True):
        result = purge_run(actor=None, batch_size=10)
    assert old_month() not in [m.name for m in access_log_months()]
    assert left() == {log["fresh"].pk}
    run = result.run
    assert progress(run) == 4  # three dropped with the month, one in a batch
    assert result.disposed["access-log"] == 4
    [dropped] = DisposalLogEntry.objects.filter(
        run=run, subject_ref=f"partition:{old_month()}"
    )
    assert (dropped.records, dropped.action) == (3, "delete")
    # The month's customers are not known one by one: counted in rows, not customers.
    batched = DisposalLogEntry.objects.filter(run=run).exclude(pk=dropped.pk)
    assert [e.records for e in batched] == [1]
    tally = disposal_run_tally(run)
    [line] = [t for t in tally.policies if t.policy.code == "access-log"]
    assert (line.rows, line.customers, tally.customers) == (4, 1, 1)
    assert run_list_recent()[0].customers == 1
    assert forgotten == [{"scope": "access_log", "start": OLD, "end": month_next(OLD)}]
    event = AuditEvent.objects.get(action="disposal.partition_dropped")
    assert (event.target_id, event.details["rows"]) == (str(run.pk), 3)
    assert event.details["partition"] == old_month()
    # Named again in the run's own event: a month's event after its commit could be
    # lost to a crash, the run's is written when it closes.
    completed = AuditEvent.objects.get(action="disposal.run_completed")
    assert completed.details["partitions_dropped"] == [old_month()]


def test_a_customer_hold_in_the_month_keeps_it_and_the_batches_take_the_rest(
    log, privacy_admin
):
    hold_place(actor=privacy_admin, customer=log["alice"], reason="Litigation 2026-17")
    run = purge_run(actor=None, batch_size=10).run
    assert old_month() in [m.name for m in access_log_months()]
    assert left() == {*(r.pk for r in log["alices"]), log["fresh"].pk}
    assert progress(run) == 2  # bob's in the month, and the edge
    assert not DisposalLogEntry.objects.filter(subject_ref__startswith="partition:")


def test_a_restricted_customer_in_the_month_keeps_it(log, privacy_admin):
    from apps.customers.services import customer_restrict

    customer_restrict(
        actor=privacy_admin,
        customer=log["bob"],
        purpose="Legal claims: a dispute in court",
        source="request",
    )
    run = purge_run(actor=None, batch_size=10).run
    assert old_month() in [m.name for m in access_log_months()]
    assert left() == {log["bobs"][0].pk, log["edge"].pk, log["fresh"].pk}
    assert progress(run) == 2


def test_a_hold_on_the_whole_access_log_drops_and_deletes_nothing(log, privacy_admin):
    hold_place(actor=privacy_admin, covers="access_log", reason="Regulator inquiry")
    run = purge_run(actor=None, batch_size=10).run
    assert old_month() in [m.name for m in access_log_months()]
    assert len(left()) == 5
    assert progress(run) == 0


def test_a_released_hold_lets_the_month_go(log, privacy_admin):
    hold = hold_place(
        actor=privacy_admin, customer=log["alice"], reason="Tax audit 2026-04"
    )
    services.hold_release(actor=privacy_admin, hold=hold)
    purge_run(actor=None, batch_size=10)
    assert old_month() not in [m.name for m in access_log_months()]
    assert LegalHold.objects.count() == 1


def test_a_month_not_yet_wholly_due_is_left_to_the_batches(support_agent):
    policy = RetentionPolicy.objects.get(code="access-log")
    # The month that ends after the cutoff: part of it is due, part not.
    cutoff = timezone.now() - timedelta(days=policy.period_days)
    edge = month_start(cutoff)
    assert partition_month_create(LOG, "created_at", edge)
    customer = make_customer()
    due = write(support_agent, customer, edge)
    kept = write(support_agent, customer, month_next(edge) - timedelta(seconds=1))
    run = purge_run(actor=None, batch_size=10).run
    assert partition_name(LOG, edge) in [m.name for m in access_log_months()]
    assert not AccessLogEntry.objects.filter(pk=due.pk).exists()
    assert AccessLogEntry.objects.filter(pk=kept.pk).exists() == (
        month_next(edge) - timedelta(seconds=1) > cutoff
    )
    assert progress(run) >= 1


def test_a_busy_log_leaves_the_month_to_the_batches(log, monkeypatch):
    def busy(*, name):
        raise PartitionBusy(name)

    monkeypatch.setattr(services, "access_log_month_detach", busy)
    run = purge_run(actor=None, batch_size=10).run
    assert old_month() in [m.name for m in access_log_months()]
    assert left() == {log["fresh"].pk}  # every due row went in batches
    assert progress(run) == 4
    assert not DisposalLogEntry.objects.filter(subject_ref__startswith="partition:")


def _steps(monkeypatch) -> list[str]:
    steps = []
    months, batch = services.access_log_months_dispose, services.disposal_batch_execute
    monkeypatch.setattr(
        services,
        "access_log_months_dispose",
        lambda **kw: steps.append("months") or months(**kw),
    )
    monkeypatch.setattr(
        services,
        "disposal_batch_execute",
        lambda **kw: steps.append("batch") or batch(**kw),
    )
    return steps


def test_months_are_dropped_once_before_any_batch(log, monkeypatch):
    steps = _steps(monkeypatch)
    purge_run(actor=None, batch_size=1)
    assert steps[0] == "months"
    assert steps.count("months") == 1
    assert left() == {log["fresh"].pk}


def test_a_fanned_out_run_drops_the_months_before_queueing_any_chain(
    log, monkeypatch, django_capture_on_commit_callbacks
):
    """The chains of every policy start at once on the workers; one deleting
    customers writes through the log and would hold up the month's lock."""
    steps = _steps(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        run = services.purge_fan_out(actor=None, batch_size=10)
    assert steps[0] == "months"
    assert steps.count("months") == 1
    assert "batch" in steps  # the chains ran (eager tasks here)
    assert old_month() not in [m.name for m in access_log_months()]
    assert left() == {log["fresh"].pk}
    assert progress(run) == 4


def test_the_lock_timeout_is_the_services(monkeypatch):
    assert partitions.LOCK_TIMEOUT == "2s"


@pytest.mark.parametrize("next_step", ["disposal", "ensure"])
def test_a_crash_before_the_drop_leaves_a_marked_month_the_next_step_drops(
    log, monkeypatch, next_step
):
    """The run stops between detaching the month (its disposal logged) and dropping
    it: its rows are out of the log, counted once, and the next disposal run or the
    daily ensure drops the marked table."""
    monkeypatch.setattr(services, "access_log_months_disposed_drop", lambda: [])
    run = purge_run(actor=None, batch_size=10).run
    assert partitions_disposed(LOG) == [disposed_name(old_month())]
    assert old_month() not in [m.name for m in access_log_months()]
    assert left() == {log["fresh"].pk}
    [dropped] = DisposalLogEntry.objects.filter(subject_ref__startswith="partition:")
    assert (dropped.run_id, dropped.records) == (run.pk, 3)
    assert progress(run) == 4
    monkeypatch.undo()
    if next_step == "disposal":
        again = purge_run(actor=None, batch_size=10).run
        assert progress(again) == 0
    else:
        partitions_ensure()
    assert partitions_disposed(LOG) == []
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [disposed_name(old_month())])
        assert cursor.fetchone()[0] is None
    assert (
        DisposalLogEntry.objects.filter(subject_ref__startswith="partition:").count()
        == 1
    )
