"""The beat task, the on-reveal hook and the command."""

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.management import call_command
from django.utils import timezone

from apps.access.models import Reveal, RevealStatus
from apps.access.services import reveal_open
from apps.monitoring.models import Alert, LookupKind, StaffLookup
from apps.monitoring.tasks import rules_evaluate_task
from tests.access.factories import assign
from tests.customers.factories import make_customer
from tests.monitoring.factories import lookups

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_off_hours(settings):
    settings.AMANAH_MONITOR_WORK_HOURS_START = 0
    settings.AMANAH_MONITOR_WORK_HOURS_END = 24


def _reveal(agent, customer):
    return reveal_open(
        actor=agent,
        customer=customer,
        fields=["email"],
        reason="Customer asked for a callback",
    )


def test_the_beat_runs_the_rules_every_five_minutes():
    entry = django_settings.CELERY_BEAT_SCHEDULE["monitoring-evaluate-rules"]
    assert entry["task"] == "monitoring.evaluate_rules"
    assert entry["schedule"] == timedelta(minutes=5)


def test_the_beat_task_raises_alerts_and_prunes_old_lookups(support_agent, settings):
    settings.AMANAH_MONITOR_PROBING_NOT_FOUND = 3
    now = timezone.now()
    lookups(support_agent, kind=LookupKind.NOT_FOUND, at=now, count=3)
    lookups(support_agent, kind=LookupKind.SEARCH, at=now - timedelta(days=40))

    assert rules_evaluate_task.delay().get() == 1
    assert rules_evaluate_task.delay().get() == 0  # deduplicated

    assert Alert.objects.get().rule == "probing"
    assert StaffLookup.objects.count() == 3


def test_each_reveal_evaluates_the_reveal_rules_for_that_agent(
    support_agent, compliance_officer, settings, django_capture_on_commit_callbacks
):
    settings.AMANAH_MONITOR_REVEAL_MIN = 2
    settings.AMANAH_MONITOR_REVEAL_Z = 1.5
    compliance_officer.email = "officer@amanah.example"
    compliance_officer.save()
    customer = make_customer()
    assign(support_agent, customer)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _reveal(support_agent, customer)
    assert len(callbacks) == 1
    assert not Alert.objects.exists()  # one reveal: under the minimum

    with django_capture_on_commit_callbacks(execute=True):
        _reveal(support_agent, customer)

    alert = Alert.objects.get()
    assert (alert.rule, alert.severity, alert.staff) == (
        "reveal_volume",
        "high",
        support_agent,
    )
    assert alert.evidence["reveals"] == 2
    # High: the agent's open reveals end at once, and compliance hears of it.
    assert set(Reveal.objects.values_list("status", flat=True)) == {
        RevealStatus.SUSPENDED
    }
    assert mail.outbox[0].to == ["officer@amanah.example"]


def test_the_reveal_hook_only_runs_after_commit(support_agent):
    customer = make_customer()
    assign(support_agent, customer)
    _reveal(support_agent, customer)  # the test transaction never commits
    assert not Alert.objects.exists()


def test_the_reveal_hook_looks_at_that_agent_only(
    support_agent, settings, django_capture_on_commit_callbacks
):
    settings.AMANAH_MONITOR_PROBING_NOT_FOUND = 1
    lookups(support_agent, kind=LookupKind.NOT_FOUND, at=timezone.now())
    customer = make_customer()
    assign(support_agent, customer)
    with django_capture_on_commit_callbacks(execute=True):
        _reveal(support_agent, customer)
    assert not Alert.objects.exists()  # probing is the beat's job


def test_the_command_prints_a_summary(support_agent, settings, capsys):
    settings.AMANAH_MONITOR_PROBING_NOT_FOUND = 1
    lookups(support_agent, kind=LookupKind.NOT_FOUND, at=timezone.now())
    call_command("evaluate_alerts", rule=["probing"])
    assert capsys.readouterr().out.strip() == "1 new alert(s), 0 high."


def test_a_high_alert_raised_while_the_broker_was_down_is_emailed_by_the_beat(
    settings, monkeypatch, django_capture_on_commit_callbacks
):
    from kombu.exceptions import OperationalError

    from apps.monitoring.services import alert_raise
    from apps.monitoring.tasks import alert_notify_task
    from tests.monitoring.factories import hit

    settings.AMANAH_ALERT_EMAILS = ["soc@amanah.example"]

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to redis")

    with monkeypatch.context() as patched:
        patched.setattr(alert_notify_task, "delay", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            alert = alert_raise(hit=hit(key="broker-down"), now=timezone.now())
    assert mail.outbox == []  # logged, not raised: the alert itself stands

    rules_evaluate_task.delay()
    assert len(mail.outbox) == 1
    assert f"#{alert.pk}" in mail.outbox[0].subject
    rules_evaluate_task.delay()  # once only
    assert len(mail.outbox) == 1
    alert.refresh_from_db()
    assert alert.notified_at is not None


def test_an_alert_email_the_mail_server_refuses_is_tried_again(settings):
    from apps.monitoring.services import alert_notify, alert_raise
    from tests.mail import flaky_mail
    from tests.monitoring.factories import hit

    settings.AMANAH_ALERT_EMAILS = ["soc@amanah.example"]
    alert = alert_raise(hit=hit(key="smtp-down"), now=timezone.now())
    flaky_mail(settings, 1)
    with pytest.raises(OSError, match="Connection unexpectedly closed"):
        alert_notify(alert_id=alert.pk)
    alert.refresh_from_db()
    assert alert.notified_at is None  # the task's retry sends it
    assert alert_notify(alert_id=alert.pk) == 1
    assert len(mail.outbox) == 1


def test_an_alert_email_whose_worker_died_is_sent_once_its_claim_expires(settings):
    from apps.monitoring.services import alert_raise, alerts_notify_pending
    from tests.monitoring.factories import hit

    settings.AMANAH_ALERT_EMAILS = ["soc@amanah.example"]
    alert = alert_raise(hit=hit(key="died"), now=timezone.now())
    # A worker claimed it, then was killed before the email went out.
    Alert.objects.filter(pk=alert.pk).update(notify_claimed_at=timezone.now())
    assert alerts_notify_pending() == 0  # it may still be sending

    lease = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 61)
    Alert.objects.filter(pk=alert.pk).update(notify_claimed_at=timezone.now() - lease)
    assert alerts_notify_pending() == 1
    assert len(mail.outbox) == 1
    assert alerts_notify_pending() == 0
