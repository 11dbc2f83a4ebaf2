"""Sending breach notices when delivery fails (issue #14, item 2): permanent failures
leave the queue at once with their reason, transient ones are retried a bounded number
of times with backoff, the send loop always ends, and customers erased before any
notice are not affected but counted apart."""

import smtplib
import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.db.models import Count
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.incidents import channels, tasks
from apps.incidents.channels import DeliveryDeferred, DeliveryFailed
from apps.incidents.errors import IncidentConflict
from apps.incidents.models import AffectedCustomer, IncidentNotice, NoticeWording
from apps.incidents.selectors import affected_counts, notification_progress
from apps.incidents.services import (
    affected_select,
    incident_notify,
    notices_queue,
    notices_send_batch,
)
from apps.incidents.tasks import notices_send_due_task, notices_send_task
from apps.retention.services import customer_erase
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer
from tests.incidents.factories import make_incident

pytestmark = pytest.mark.django_db

NO_EMAIL = "no email address on record"


@pytest.fixture(autouse=True)
def _small_batches(settings):
    settings.AMANAH_NOTICE_BATCH_SIZE = 3
    settings.AMANAH_NOTICE_MAX_ATTEMPTS = 3
    settings.AMANAH_NOTICE_RETRY_SECONDS = 60


@pytest.fixture
def broker(settings, monkeypatch):
    """A broker stand-in: the task's messages are kept, and `drain` runs them the way
    one worker would (immediate ones only; countdowns are kept apart)."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    sent: list[tuple[tuple, float | None]] = []

    def apply_async(args=None, kwargs=None, **options):
        sent.append((tuple(args or ()), options.get("countdown")))

    monkeypatch.setattr(notices_send_task, "apply_async", apply_async)

    class Broker:
        messages = sent

        def drain(self, limit: int = 50) -> int:
            """Run immediate messages until none is left; how many ran."""
            ran = 0
            while ready := [m for m in sent if m[1] is None]:
                sent.remove(ready[0])
                ran += 1
                assert ran <= limit, "the task re-queued itself for ever"
                notices_send_task(*ready[0][0])
            return ran

        def countdowns(self) -> list[float]:
            return [countdown for _, countdown in sent if countdown is not None]

    return Broker()


def bounded(monkeypatch, limit: int = 50) -> list[int]:
    """Count the batches the eager loop runs, and stop a loop that never ends."""
    calls: list[int] = []
    real = tasks.notices_send_batch

    def counted(**kwargs):
        calls.append(1)
        assert len(calls) <= limit, "the send loop does not end"
        return real(**kwargs)

    monkeypatch.setattr(tasks, "notices_send_batch", counted)
    return calls


def queued_incident(actor, *customers):
    incident = make_incident(actor)
    affected_select(
        actor=actor,
        incident=incident,
        scope="list",
        customer_ids=" ".join(str(c.pk) for c in customers),
    )
    notices_queue(actor=actor, incident=incident)
    return incident


def statuses(incident, channel: str = "email") -> dict[str, int]:
    return dict(
        IncidentNotice.objects.filter(incident=incident, channel=channel)
        .values_list("status")
        .annotate(n=Count("pk"))
    )


def send_all(incident, limit: int = 30) -> None:
    """Batches until none is attempted, the way the eager task loops (bounded)."""
    for _ in range(limit):
        if not notices_send_batch(incident_id=incident.pk):
            return
    raise AssertionError("the send loop does not end")


def due_now(incident) -> None:
    """Time passes: every notice waiting for a retry is due."""
    IncidentNotice.objects.filter(incident=incident, status="retrying").update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


# Permanent failures -----------------------------------------------------------------


def test_more_permanent_failures_than_a_batch_end_the_eager_send(
    privacy_admin, monkeypatch
):
    unreachable = [make_customer(email="") for _ in range(7)]
    reachable = [make_customer(email=f"ok{i}@example.com") for i in range(2)]
    incident = queued_incident(privacy_admin, *unreachable, *reachable)
    calls = bounded(monkeypatch)

    notices_send_task(str(incident.pk))

    assert len(calls) == 7  # 18 notices in batches of 3, then one that finds none
    assert sorted(m.to[0] for m in mail.outbox) == [
        "ok0@example.com",
        "ok1@example.com",
    ]
    assert statuses(incident) == {"failed": 7, "sent": 2}
    failed = IncidentNotice.objects.filter(incident=incident, status="failed")
    assert set(failed.values_list("error", flat=True)) == {NO_EMAIL}
    assert set(failed.values_list("attempts", flat=True)) == {1}
    assert not failed.exclude(next_attempt_at=None).exists()
    # A rerun leaves failed notices alone and sends nothing twice.
    assert notices_send_batch(incident_id=incident.pk) == 0
    notices_send_task(str(incident.pk))
    assert len(mail.outbox) == 2


def test_with_a_broker_notices_behind_a_full_batch_of_failures_are_sent(
    privacy_admin, broker
):
    unreachable = [make_customer(email="") for _ in range(4)]
    incident = queued_incident(privacy_admin, *unreachable)
    reachable = [make_customer(email=f"late{i}@example.com") for i in range(3)]
    AffectedCustomer.objects.bulk_create(
        AffectedCustomer(incident=incident, customer_id=c.pk, country="ID")
        for c in reachable
    )
    notices_queue(actor=privacy_admin, incident=incident)  # queued after the others

    notices_send_task(str(incident.pk))
    broker.drain()

    assert len(mail.outbox) == 3
    assert statuses(incident) == {"failed": 4, "sent": 3}
    assert not IncidentNotice.objects.filter(status__in=["queued", "retrying"]).exists()
    assert broker.messages == []  # no progress, nothing waiting: the chain ended


def test_a_customer_erased_after_queueing_fails_at_once_on_every_channel(
    privacy_admin, monkeypatch
):
    kept, erased = make_customer(email="kept@example.com"), make_customer()
    incident = queued_incident(privacy_admin, kept, erased)
    customer_erase(actor=privacy_admin, customer=erased)
    bounded(monkeypatch)

    notices_send_task(str(incident.pk))

    gone = IncidentNotice.objects.filter(customer_id=erased.pk)
    assert set(gone.values_list("channel", "status", "error", "attempts")) == {
        ("email", "failed", "customer erased", 1),
        ("in_app", "failed", "customer erased", 1),
    }
    assert [m.to for m in mail.outbox] == [["kept@example.com"]]


def test_the_email_channel_tells_permanent_from_transient_refusals(monkeypatch):
    email = channels.EmailChannel()
    notice = IncidentNotice(wording=NoticeWording(subject="s", body="b"))
    with pytest.raises(DeliveryFailed, match="invalid email address"):
        email.send(notice=notice, address="not an address")

    def refuse(code: int):
        def send(self, fail_silently=False):
            raise smtplib.SMTPRecipientsRefused({"x@example.com": (code, b"no")})

        return send

    monkeypatch.setattr("django.core.mail.EmailMessage.send", refuse(550))
    with pytest.raises(DeliveryFailed, match="address refused") as permanent:
        email.send(notice=notice, address="x@example.com")
    assert "x@example.com" not in str(permanent.value)
    monkeypatch.setattr("django.core.mail.EmailMessage.send", refuse(451))
    with pytest.raises(DeliveryDeferred):
        email.send(notice=notice, address="x@example.com")


# Transient failures -----------------------------------------------------------------


def smtp_down_for(monkeypatch, times: int) -> list[int]:
    """The mail server drops the connection for the first `times` sends."""
    real = channels.EmailMessage.send
    tried: list[int] = []

    def send(self, fail_silently=False):
        tried.append(1)
        if len(tried) <= times:
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        return real(self, fail_silently=fail_silently)

    monkeypatch.setattr(channels.EmailMessage, "send", send)
    return tried


def test_a_transient_failure_is_retried_after_a_backoff_then_sent_once(
    privacy_admin, monkeypatch
):
    customer = make_customer(email="retry@example.com")
    incident = queued_incident(privacy_admin, customer)
    smtp_down_for(monkeypatch, times=1)

    before = timezone.now()
    assert notices_send_batch(incident_id=incident.pk) == 2
    notice = IncidentNotice.objects.get(channel="email")
    assert (notice.status, notice.attempts) == ("retrying", 1)
    assert notice.error == "mail server unavailable"
    assert notice.next_attempt_at >= before + timedelta(seconds=60)
    assert notice.next_attempt_at <= timezone.now() + timedelta(seconds=60)

    assert notices_send_batch(incident_id=incident.pk) == 0  # not due yet
    due_now(incident)
    assert notices_send_batch(incident_id=incident.pk) == 1
    notice.refresh_from_db()
    assert (notice.status, notice.attempts, notice.error) == ("sent", 2, "")
    assert [m.to for m in mail.outbox] == [["retry@example.com"]]


def test_retries_back_off_exponentially_and_stop_at_the_cap(privacy_admin, monkeypatch):
    incident = queued_incident(privacy_admin, make_customer(email="down@example.com"))
    tried = smtp_down_for(monkeypatch, times=100)
    waits = []
    for _ in range(10):
        start = timezone.now()
        notices_send_batch(incident_id=incident.pk)
        notice = IncidentNotice.objects.get(channel="email")
        if notice.next_attempt_at:
            waits.append(round((notice.next_attempt_at - start).total_seconds(), -1))
        due_now(incident)

    assert len(tried) == 3  # AMANAH_NOTICE_MAX_ATTEMPTS
    assert waits == [60, 120]
    assert (notice.status, notice.attempts, notice.error) == (
        "failed",
        3,
        "mail server unavailable",
    )
    assert notice.next_attempt_at is None
    assert mail.outbox == []


def test_an_unexpected_error_on_one_notice_does_not_hold_up_the_others(
    privacy_admin, monkeypatch
):
    bad, good = make_customer(email="bad@example.com"), make_customer(email="g@x.io")
    incident = queued_incident(privacy_admin, bad, good)
    real = channels.EmailChannel.send

    def send(self, *, notice, address):
        if address == "bad@example.com":
            raise ValueError("adapter bug")
        return real(self, notice=notice, address=address)

    monkeypatch.setattr(channels.EmailChannel, "send", send)
    bounded(monkeypatch)

    notices_send_task(str(incident.pk))

    assert [m.to for m in mail.outbox] == [["g@x.io"]]
    stuck = IncidentNotice.objects.get(customer_id=bad.pk, channel="email")
    assert (stuck.status, stuck.error) == ("retrying", "unexpected error (ValueError)")


def test_a_task_out_of_time_stops_at_the_notice_it_was_sending(
    privacy_admin, monkeypatch
):
    from celery.exceptions import SoftTimeLimitExceeded

    first, second = make_customer(email="a@x.io"), make_customer(email="b@x.io")
    incident = queued_incident(privacy_admin, first, second)

    def out_of_time(self, *, notice, address):
        raise SoftTimeLimitExceeded

    monkeypatch.setattr(channels.EmailChannel, "send", out_of_time)
    with pytest.raises(SoftTimeLimitExceeded):
        notices_send_batch(incident_id=incident.pk)
    # Left claimed: settled later as "outcome unknown", never tried again.
    assert (
        list(
            IncidentNotice.objects.filter(channel="email").values_list(
                "status", flat=True
            )
        ).count("sending")
        == 1
    )
    assert not mail.outbox


def test_with_a_broker_the_task_waits_for_the_next_retry_instead_of_spinning(
    privacy_admin, broker, monkeypatch
):
    incident = queued_incident(privacy_admin, make_customer(email="w@example.com"))
    smtp_down_for(monkeypatch, times=1)

    notices_send_task(str(incident.pk))  # progress: in-app sent, email deferred
    assert broker.drain() == 1  # the follow-up finds nothing due and stops...
    assert len(broker.countdowns()) == 1  # ...after booking one wake-up
    assert 50 <= broker.countdowns()[0] <= 61
    notices_send_task(str(incident.pk))  # another worker, nothing due either
    assert len(broker.countdowns()) == 1  # one wake-up per incident is enough

    due_now(incident)
    broker.messages.clear()
    notices_send_task(str(incident.pk))
    broker.drain()
    assert [m.to for m in mail.outbox] == [["w@example.com"]]
    assert statuses(incident) == {"sent": 1}


def test_the_beat_job_resumes_only_incidents_with_notices_due(
    privacy_admin, broker, monkeypatch
):
    waiting = queued_incident(privacy_admin, make_customer(email="a@example.com"))
    later = queued_incident(privacy_admin, make_customer(email="b@example.com"))
    done = queued_incident(privacy_admin, make_customer(email="c@example.com"))
    smtp_down_for(monkeypatch, times=2)
    for incident in (waiting, later, done):
        notices_send_batch(incident_id=incident.pk)
    IncidentNotice.objects.filter(incident=done).update(
        status="sent", sent_at=timezone.now(), next_attempt_at=None
    )
    due_now(waiting)

    notices_send_due_task()

    assert broker.messages == [((str(waiting.pk),), None)]


# Erased customers -------------------------------------------------------------------


def test_customers_erased_before_notice_are_sent_nothing_and_counted_apart(
    privacy_admin,
):
    """Erased before the incident: not affected. Erased since (here between the
    snapshot and the notices): affected, counted, but sent nothing."""
    live = make_customer(email="live@example.com")
    erased_before = make_customer()
    erased_between = make_customer()
    customer_erase(actor=privacy_admin, customer=erased_before)
    now = timezone.now()
    incident = make_incident(
        privacy_admin, occurred_at=now, detected_at=now, aware_at=now
    )

    assert affected_select(actor=privacy_admin, incident=incident, scope="all") == 2
    assert sum(affected_counts(incident=incident).values()) == 2
    customer_erase(actor=privacy_admin, customer=erased_between)
    assert notices_queue(actor=privacy_admin, incident=incident) == 2

    assert set(IncidentNotice.objects.values_list("customer_id", flat=True)) == {
        live.pk
    }
    assert sum(affected_counts(incident=incident).values()) == 2
    progress = notification_progress(incident=incident)
    assert progress["erased_before_notice"] == 2
    audited = dict(
        AuditEvent.objects.filter(
            action__in=["incident.affected_selected", "incident.notices_queued"]
        ).values_list("action", "details__erased_before_notice")
    )
    assert audited == {
        "incident.affected_selected": 1,
        "incident.notices_queued": 1,
    }
    # Queueing again (the page's button) changes nothing.
    assert notices_queue(actor=privacy_admin, incident=incident) == 0
    assert notification_progress(incident=incident)["erased_before_notice"] == 2


# What the operator sees -------------------------------------------------------------


def mixed_incident(actor, monkeypatch):
    """One customer reached, two without an email address (failed for good), one
    whose email waits for a retry, and one erased since the incident, before any
    notice (affected all the same: counted, sent nothing)."""
    erased = make_customer()
    incident = make_incident(actor)
    affected_select(
        actor=actor,
        incident=incident,
        scope="list",
        customer_ids=" ".join(
            str(c.pk)
            for c in (
                make_customer(email="sent@example.com"),
                make_customer(email=""),
                make_customer(email=""),
                erased,
            )
        ),
    )
    customer_erase(actor=actor, customer=erased)
    notices_queue(actor=actor, incident=incident)
    late = make_customer(email="late@example.com")
    AffectedCustomer.objects.create(
        incident=incident, customer_id=late.pk, country="ID"
    )
    notices_queue(actor=actor, incident=incident)
    real = channels.EmailChannel.send

    def send(self, *, notice, address):
        if address == "late@example.com":
            raise DeliveryDeferred("mail server unavailable")
        return real(self, notice=notice, address=address)

    monkeypatch.setattr(channels.EmailChannel, "send", send)
    send_all(incident)
    return incident


def test_the_incident_page_shows_counts_per_status_reasons_and_erased(
    client, privacy_admin, monkeypatch
):
    incident = mixed_incident(privacy_admin, monkeypatch)
    sign_in(client, privacy_admin)

    html = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()

    assert "Affected customers: 5" in html
    assert "· 1 erased since the incident (counted; no further notice)" in html
    assert "Sent nothing: 1 erased before any notice was queued." in html
    for status, n in (("queued", 0), ("retrying", 1), ("sent", 5), ("failed", 2)):
        assert f'data-status="{status}">{n}<' in html, status
    assert f"{NO_EMAIL}: 2" in html
    assert "next attempt" in html
    assert "example.com" not in html  # reasons, never addresses


def test_the_api_progress_has_statuses_reasons_and_erased(
    compliance_officer, privacy_admin, monkeypatch
):
    incident = mixed_incident(privacy_admin, monkeypatch)
    api = APIClient()
    api.force_authenticate(compliance_officer)

    body = api.get(f"/api/v1/incidents/{incident.pk}/notifications/").json()

    assert body["total"] == 8
    assert body["by_status"] == {
        "queued": 0,
        "retrying": 1,
        "sending": 0,
        "sent": 5,
        "failed": 2,
    }
    assert body["reasons"] == {NO_EMAIL: 2}
    assert body["erased_before_notice"] == 1
    assert body["next_attempt_at"]
    affected = api.get(f"/api/v1/incidents/{incident.pk}/affected/").json()
    assert (affected["total"], affected["erased_before_notice"]) == (5, 1)
    assert affected["erased_since_incident"] == 1


def test_posting_again_sends_what_is_due_and_nothing_twice(
    compliance_officer, privacy_admin, django_capture_on_commit_callbacks, monkeypatch
):
    bounded(monkeypatch)
    incident = make_incident(privacy_admin)
    affected_select(
        actor=privacy_admin,
        incident=incident,
        scope="list",
        customer_ids=f"{make_customer(email='p@example.com').pk} "
        f"{make_customer(email='').pk}",
    )
    api = APIClient()
    api.force_authenticate(compliance_officer)
    url = f"/api/v1/incidents/{incident.pk}/notifications/"
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            assert api.post(url).status_code == 202
    assert [m.to for m in mail.outbox] == [["p@example.com"]]
    body = api.get(url).json()
    assert body["by_status"]["failed"] == 1
    assert body["by_status"]["sent"] == 3


# Concurrency ------------------------------------------------------------------------


@pytest.mark.postgres  # row locks: SKIP LOCKED
@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_never_send_one_notice_twice(privacy_admin, monkeypatch):
    people = [make_customer(email=f"w{i}@example.com") for i in range(12)]
    people += [make_customer(email="") for _ in range(4)]
    incident = queued_incident(privacy_admin, *people)
    real = channels.EmailChannel.send

    def slow(self, *, notice, address):
        time.sleep(0.005)
        return real(self, notice=notice, address=address)

    monkeypatch.setattr(channels.EmailChannel, "send", slow)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            send_all(incident)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    recipients = sorted(m.to[0] for m in mail.outbox)
    assert recipients == sorted(f"w{i}@example.com" for i in range(12))
    assert statuses(incident) == {"sent": 12, "failed": 4}
    assert not IncidentNotice.objects.filter(attempts__gt=1).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_notifies_at_once_queue_each_notice_once_with_one_remedy_code(
    privacy_admin,
):
    from apps.incidents.models import Incident

    people = [make_customer(email=f"r{i}@example.com") for i in range(6)]
    incident = make_incident(privacy_admin)
    Incident.objects.filter(pk=incident.pk).update(remedy_kind="voucher")
    incident.refresh_from_db()
    affected_select(
        actor=privacy_admin,
        incident=incident,
        scope="list",
        customer_ids=" ".join(str(c.pk) for c in people),
    )
    barrier = threading.Barrier(2)
    counts: list[int] = []
    refused: list[str] = []

    def notify() -> None:
        try:
            barrier.wait()
            counts.append(notices_queue(actor=privacy_admin, incident=incident))
        except IncidentConflict as exc:
            refused.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=notify) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    # The second was refused while the first queued, or found everything queued.
    assert sorted(counts) in ([12], [0, 12])
    assert refused == ([] if len(counts) == 2 else ["queueing"])
    assert IncidentNotice.objects.filter(incident=incident).count() == 12
    codes = dict(
        AffectedCustomer.objects.filter(incident=incident).values_list(
            "customer_id", "remedy_code"
        )
    )
    for notice in IncidentNotice.objects.filter(incident=incident):
        assert codes[notice.customer_id] in notice.body


def test_incident_notify_still_sends_through_the_task(
    privacy_admin, django_capture_on_commit_callbacks
):
    incident = make_incident(privacy_admin)
    affected_select(
        actor=privacy_admin,
        incident=incident,
        scope="list",
        customer_ids=str(make_customer(email="n@example.com").pk),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert incident_notify(actor=privacy_admin, incident=incident) == 2
    assert [m.to for m in mail.outbox] == [["n@example.com"]]


def test_the_migration_sets_apart_customers_erased_before_any_notice(privacy_admin):
    from importlib import import_module

    from django.apps import apps

    gone, told, here = (make_customer(email=f"{n}@example.com") for n in "gth")
    incident = queued_incident(privacy_admin, told, here)
    affected_select_keep = AffectedCustomer.objects.create(
        incident=incident, customer_id=gone.pk, country="ID", region="ID-JK"
    )
    customer_erase(actor=None, customer=gone)
    customer_erase(actor=None, customer=told)  # erased after its notices were queued

    import_module("apps.incidents.migrations.0003_notice_retries").set_apart_the_erased(
        apps, None
    )
    apart = set(
        AffectedCustomer.objects.filter(erased_before_notice=True).values_list(
            "pk", flat=True
        )
    )
    assert apart == {affected_select_keep.pk}
