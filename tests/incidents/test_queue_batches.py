"""Queueing breach notices a batch at a time (issue 22): each batch commits on its
own, so a run stopped midway keeps what it queued and the next run queues only the
rest, and one run at a time queues an incident's notices."""

import threading

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.audit.models import AuditEvent
from apps.core.db import advisory_session_lock
from apps.incidents import services
from apps.incidents.errors import IncidentConflict
from apps.incidents.models import (
    AffectedCustomer,
    Incident,
    IncidentNotice,
    NoticeWording,
)
from apps.incidents.notices import CODE_MARK
from apps.incidents.services import notices_queue
from tests.customers.factories import make_customer
from tests.incidents import factories

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def voucher_incident(actor, size: int):
    people = [make_customer(email=f"b{i}@example.com") for i in range(size)]
    return factories.voucher_incident(actor, people)


def queued_events(incident) -> list[int]:
    return list(
        AuditEvent.objects.filter(
            action="incident.notices_queued", target_id=str(incident.pk)
        )
        .order_by("seq")
        .values_list("details__count", flat=True)
    )


def test_a_queueing_stopped_midway_keeps_its_batches_and_the_next_queues_the_rest(
    privacy_admin, monkeypatch
):
    incident = voucher_incident(privacy_admin, 5)
    real = services.bulk_insert
    calls = []

    def stop_at_the_second_batch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("worker stopped")
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "bulk_insert", stop_at_the_second_batch)
    with pytest.raises(RuntimeError):
        notices_queue(actor=privacy_admin, incident=incident, batch_size=2)

    # The first batch (2 people, 2 channels each) is committed and audited; the
    # second left nothing behind, not even its remedy codes.
    assert IncidentNotice.objects.filter(incident=incident).count() == 4
    assert queued_events(incident) == [4]
    codes = dict(
        AffectedCustomer.objects.filter(incident=incident).values_list(
            "customer_id", "remedy_code"
        )
    )
    assert sorted(bool(code) for code in codes.values()) == [0, 0, 0, 1, 1]

    monkeypatch.setattr(services, "bulk_insert", real)
    assert notices_queue(actor=privacy_admin, incident=incident, batch_size=2) == 6
    assert queued_events(incident) == [4, 4, 2]
    notices = IncidentNotice.objects.filter(incident=incident)
    assert notices.count() == 10
    assert len(set(notices.values_list("customer_id", "channel"))) == 10
    # The codes given before the stop are kept; each notice names its own person's.
    after = dict(
        AffectedCustomer.objects.filter(incident=incident).values_list(
            "customer_id", "remedy_code"
        )
    )
    assert {k: v for k, v in after.items() if codes[k]} == {
        k: v for k, v in codes.items() if v
    }
    for notice in notices:
        assert f"Your code: {after[notice.customer_id]}" in notice.body
        assert after[notice.customer_id] in notice.sections[-1]["text"]
        assert CODE_MARK not in notice.body + str(notice.sections)
    # The words stored once, for all five and both runs: one language, regime and
    # set of categories.
    assert NoticeWording.objects.filter(incident=incident).count() == 1
    # Nothing left: queueing again queues nothing and says so on the record.
    assert notices_queue(actor=privacy_admin, incident=incident, batch_size=2) == 0
    assert queued_events(incident) == [4, 4, 2, 0]


def _notice_lookups(queries) -> int:
    """Statements that read this incident's notices per person of a batch."""
    return sum(_is_lookup(q["sql"]) for q in queries)


def _is_lookup(sql: str) -> bool:
    return (
        'FROM "incidents_incidentnotice"' in sql
        and '= ("incidents_affectedcustomer"."customer_id")' in sql
    )


def test_a_first_queueing_does_not_look_for_notices_it_has_not_queued(
    privacy_admin, monkeypatch
):
    # At 10,000,000 people the lookup read every notice queued so far, per batch.
    incident = voucher_incident(privacy_admin, 4)
    with CaptureQueriesContext(connection) as first:
        assert notices_queue(actor=privacy_admin, incident=incident, batch_size=2) == 8
    # The one read of the notices: whether any is queued, before the batches.
    reads = [
        q["sql"]
        for q in first.captured_queries
        if q["sql"].startswith("SELECT") and '"incidents_incidentnotice"' in q["sql"]
    ]
    assert len(reads) == 1
    assert reads[0].endswith("LIMIT 1")

    # A run stopped midway: the next one keeps what it queued.
    IncidentNotice.objects.filter(
        incident=incident,
        customer_id__in=IncidentNotice.objects.filter(incident=incident).values(
            "customer_id"
        )[:1],
    ).filter(channel="email").delete()
    with CaptureQueriesContext(connection) as resumed:
        assert notices_queue(actor=privacy_admin, incident=incident, batch_size=2) == 1
    # Each batch's select looks (two of two people, and the one that finds none).
    assert _notice_lookups(resumed.captured_queries) == 3
    assert IncidentNotice.objects.filter(incident=incident).count() == 8


def test_a_resumed_queueing_probes_each_persons_notices_never_all_of_them(
    privacy_admin,
):
    """At 2,000,000 notices a resumed batch's join read all of the incident's
    notices (a bitmap scan of 2,000,000 rows, 0.3 s a batch, on statistics taken
    before them). Now each person's are probed in the unique index: the plan reads
    the notices only in three subplans run per row (one per channel), each an index
    probe by the row's customer."""
    incident = voucher_incident(privacy_admin, 4)
    with connection.cursor() as cursor:
        # Statistics that say the incident has no notice at all, as before a run
        # that queues millions.
        cursor.execute("ANALYZE incidents_incidentnotice")
    notices_queue(actor=privacy_admin, incident=incident, batch_size=2)
    IncidentNotice.objects.filter(incident=incident, channel="in_app").delete()
    with CaptureQueriesContext(connection) as resumed:
        assert notices_queue(actor=privacy_admin, incident=incident, batch_size=2) == 4
    lookup = next(q["sql"] for q in resumed.captured_queries if _is_lookup(q["sql"]))
    with connection.cursor() as cursor:
        # A few rows here, which a scan reads fastest: the plan of a large table.
        cursor.execute("SET enable_seqscan = off")
        try:
            cursor.execute(f"EXPLAIN {lookup}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        finally:
            cursor.execute("RESET enable_seqscan")
    lines = plan.splitlines()
    scans = [n for n, line in enumerate(lines) if "on incidents_incidentnotice" in line]
    # One index probe per channel, keyed by the row's customer.
    assert len(scans) == 3, plan
    for n in scans:
        assert "Index Scan using" in lines[n], plan
        assert "customer_id = incidents_affectedcustomer.customer_id" in lines[n + 1]
    assert plan.count("SubPlan") == 3
    assert IncidentNotice.objects.filter(incident=incident).count() == 8


def test_a_second_queueing_while_one_runs_is_refused(privacy_admin):
    incident = voucher_incident(privacy_admin, 2)
    holding, release = threading.Event(), threading.Event()

    def running_queueing() -> None:
        # Another process in the middle of queueing this incident's notices.
        try:
            with advisory_session_lock(f"incidents.notices_queue:{incident.pk}"):
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=running_queueing)
    thread.start()
    try:
        assert holding.wait(30)
        with pytest.raises(IncidentConflict) as refused:
            notices_queue(actor=privacy_admin, incident=incident)
        assert refused.value.code == "queueing"
        assert not IncidentNotice.objects.filter(incident=incident).exists()
        assert queued_events(incident) == []
    finally:
        release.set()
        thread.join(30)
    assert notices_queue(actor=privacy_admin, incident=incident) == 4


def test_between_batches_the_incident_is_free(privacy_admin, monkeypatch):
    """Each batch commits: between two, staff can lock the incident (a timeline
    entry, a deadline recorded) while a long queueing runs, and no transaction stays
    open after it."""
    incident = voucher_incident(privacy_admin, 3)
    real = services._notices_queue_batch
    free: list[bool] = []

    def lock_elsewhere() -> None:
        try:
            with transaction.atomic():
                Incident.objects.select_for_update(nowait=True).get(pk=incident.pk)
            free.append(True)
        except DatabaseError:
            free.append(False)
        finally:
            connection.close()

    def batch(**kwargs):
        if kwargs["after"]:  # not the first: the one before has committed
            thread = threading.Thread(target=lock_elsewhere)
            thread.start()
            thread.join(30)
        return real(**kwargs)

    monkeypatch.setattr(services, "_notices_queue_batch", batch)
    assert notices_queue(actor=privacy_admin, incident=incident, batch_size=1) == 6
    assert free == [True, True, True]  # before the 2nd, 3rd and the empty 4th
    assert queued_events(incident) == [2, 2, 2]
    assert not connection.in_atomic_block


def test_what_customers_are_told_cannot_change_between_batches(
    privacy_admin, monkeypatch
):
    """One run tells everyone the same: an edit of the incident or of its texts while
    its notices are being queued is refused, and allowed once they are."""
    from apps.incidents.services import incident_text_save, incident_update

    incident = voucher_incident(privacy_admin, 2)
    fields = {name: getattr(incident, name) for name in services.TEXT_FIELDS}
    real = services._notices_queue_batch
    refused: list[str] = []

    def edit_elsewhere() -> None:
        try:
            for edit in (
                lambda: incident_update(
                    actor=privacy_admin,
                    incident=incident,
                    data={"what_happened": "Something else happened."},
                ),
                lambda: incident_text_save(
                    actor=privacy_admin,
                    incident=incident,
                    language="id",
                    data=fields,
                    create=True,
                ),
            ):
                try:
                    with transaction.atomic():
                        edit()
                except IncidentConflict as exc:
                    refused.append(exc.code)
        finally:
            connection.close()

    def batch(**kwargs):
        if kwargs["after"]:
            thread = threading.Thread(target=edit_elsewhere)
            thread.start()
            thread.join(30)
        return real(**kwargs)

    monkeypatch.setattr(services, "_notices_queue_batch", batch)
    assert notices_queue(actor=privacy_admin, incident=incident, batch_size=1) == 4
    assert refused == ["queueing"] * 4  # both edits, before the 2nd and the last
    bodies = set(
        IncidentNotice.objects.filter(incident=incident).values_list(
            "wording__body", flat=True
        )
    )
    assert not any("Something else happened." in body for body in bodies)
    assert not incident.texts.exists()
    monkeypatch.undo()
    incident_update(actor=privacy_admin, incident=incident, data={"title": "Other"})
    assert Incident.objects.get(pk=incident.pk).title == "Other"
