import json
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from apps.access.models import Reveal, RevealStatus
from apps.access.services import reveal_open
from apps.audit.models import AuditEvent
from apps.core.errors import Forbidden
from apps.incidents.models import Incident
from apps.monitoring.errors import AlertError
from apps.monitoring.models import Alert, AlertStatus, LookupKind, StaffLookup
from apps.monitoring.services import (
    alert_acknowledge,
    alert_dismiss,
    alert_escalate,
    alert_raise,
    alert_suspend_reveals,
    lookup_record,
    lookups_prune,
    rules_evaluate,
)
from tests.access.factories import assign
from tests.customers.factories import CANARY, make_canary, make_customer
from tests.monitoring.factories import NOON, hit, lookups, make_alert, reveals

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_off_hours(settings):
    """Rules that look at the wall clock stay quiet unless a test asks."""
    settings.AMANAH_MONITOR_WORK_HOURS_START = 0
    settings.AMANAH_MONITOR_WORK_HOURS_END = 24


def _actions() -> list[str]:
    """The trail, without the set-up's customer and interaction events."""
    return list(
        AuditEvent.objects.exclude(action__startswith="customer.")
        .exclude(action__startswith="interaction.")
        .order_by("seq")
        .values_list("action", flat=True)
    )


def _live_reveal(staff, customer) -> None:
    now = timezone.now()
    reveals(staff, customer, at=now - timedelta(minutes=1))


# Raising alerts ----------------------------------------------------------------------


def test_a_hit_becomes_an_open_audited_alert(support_agent, settings):
    settings.AMANAH_MONITOR_PROBING_NOT_FOUND = 3
    lookups(support_agent, kind=LookupKind.NOT_FOUND, at=NOON, count=3)

    [alert] = rules_evaluate(now=NOON)

    assert alert.rule == "probing"
    assert alert.severity == "medium"
    assert alert.status == AlertStatus.OPEN
    assert alert.staff == support_agent
    assert alert.evidence["not_found"] == 3
    assert alert.created_at == NOON
    event = AuditEvent.objects.get(action="alert.raised")
    assert event.target_id == str(alert.pk)
    assert event.details == {
        "rule": "probing",
        "severity": "medium",
        "staff": alert.staff_id,
    }


def test_the_same_hit_in_the_same_window_raises_one_alert(support_agent, settings):
    settings.AMANAH_MONITOR_PROBING_NOT_FOUND = 3
    settings.AMANAH_MONITOR_PROBING_MINUTES = 10
    lookups(support_agent, kind=LookupKind.NOT_FOUND, at=NOON, count=3)

    assert len(rules_evaluate(now=NOON)) == 1
    assert rules_evaluate(now=NOON + timedelta(minutes=1)) == []
    # A later evaluation in the next bucket, still inside the rolling window.
    assert rules_evaluate(now=NOON + timedelta(minutes=9)) == []
    assert Alert.objects.count() == 1
    assert _actions().count("alert.raised") == 1


def test_an_equal_dedupe_key_is_refused_even_outside_the_window(support_agent):
    assert alert_raise(hit=hit(staff_id=support_agent.pk, severity="low"), now=NOON)
    later = NOON + timedelta(days=1)
    assert (
        alert_raise(hit=hit(staff_id=support_agent.pk, severity="low"), now=later)
        is None
    )
    assert Alert.objects.count() == 1


def test_a_new_episode_after_the_window_is_a_new_alert(support_agent, settings):
    settings.AMANAH_MONITOR_PROBING_NOT_FOUND = 3
    lookups(support_agent, kind=LookupKind.NOT_FOUND, at=NOON, count=3)
    rules_evaluate(now=NOON)
    later = NOON + timedelta(hours=1)
    lookups(support_agent, kind=LookupKind.NOT_FOUND, at=later, count=3)
    assert len(rules_evaluate(now=later)) == 1
    assert Alert.objects.count() == 2


def test_only_the_named_rules_run(support_agent, settings):
    settings.AMANAH_MONITOR_PROBING_NOT_FOUND = 3
    lookups(support_agent, kind=LookupKind.NOT_FOUND, at=NOON, count=3)
    assert rules_evaluate(now=NOON, codes=["enumeration"]) == []
    assert len(rules_evaluate(now=NOON, codes=["probing"])) == 1


def test_a_high_alert_suspends_open_reveals_and_emails_compliance(
    support_agent,
    compliance_officer,
    privacy_admin,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.AMANAH_ALERT_EMAILS = []
    compliance_officer.email = "officer@amanah.example"
    compliance_officer.save()
    privacy_admin.email = "admin@amanah.example"  # not a compliance officer
    privacy_admin.save()
    customer = make_customer()
    _live_reveal(support_agent, customer)

    with django_capture_on_commit_callbacks(execute=True):
        alert = alert_raise(hit=hit(staff_id=support_agent.pk), now=timezone.now())

    reveal = Reveal.objects.get()
    assert reveal.status == RevealStatus.SUSPENDED
    assert reveal.expires_at <= timezone.now()
    alert.refresh_from_db()
    assert alert.reveals_suspended_at is not None
    assert _actions() == ["alert.raised", "reveal.suspended", "alert.reveals_suspended"]
    [message] = mail.outbox
    assert message.to == ["officer@amanah.example"]
    assert f"alert #{alert.pk}" in message.subject
    assert "Reveal volume far above baseline" in message.body
    assert "reveals: 15" in message.body
    assert f"Staff member: #{support_agent.pk} (Support agent)" in message.body
    assert "/compliance/alerts/" in message.body


def test_alert_emails_go_to_the_configured_addresses(
    support_agent, settings, django_capture_on_commit_callbacks
):
    settings.AMANAH_ALERT_EMAILS = ["soc@amanah.example", "dpo@amanah.example"]
    with django_capture_on_commit_callbacks(execute=True):
        alert_raise(hit=hit(staff_id=None), now=NOON)
    assert mail.outbox[0].to == ["soc@amanah.example", "dpo@amanah.example"]


def test_suspension_on_high_can_be_switched_off(
    support_agent, settings, django_capture_on_commit_callbacks
):
    settings.AMANAH_ALERT_SUSPEND_ON_HIGH = False
    _live_reveal(support_agent, make_customer())
    with django_capture_on_commit_callbacks(execute=True):
        alert = alert_raise(hit=hit(staff_id=support_agent.pk), now=timezone.now())
    assert Reveal.objects.get().status == RevealStatus.GRANTED
    assert alert.reveals_suspended_at is None


def test_medium_alerts_neither_suspend_nor_email(
    support_agent, compliance_officer, django_capture_on_commit_callbacks
):
    compliance_officer.email = "officer@amanah.example"
    compliance_officer.save()
    _live_reveal(support_agent, make_customer())
    with django_capture_on_commit_callbacks(execute=True):
        alert_raise(
            hit=hit(staff_id=support_agent.pk, severity="medium"), now=timezone.now()
        )
    assert Reveal.objects.get().status == RevealStatus.GRANTED
    assert mail.outbox == []


def test_no_recipient_means_no_email_and_no_failure(
    support_agent, compliance_officer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        assert alert_raise(hit=hit(staff_id=None), now=NOON)
    assert mail.outbox == []


def test_evidence_and_email_carry_no_personal_data(
    support_agent,
    compliance_officer,
    settings,
    django_capture_on_commit_callbacks,
):
    settings.AMANAH_MONITOR_REVEAL_MIN = 1
    settings.AMANAH_MONITOR_REVEAL_Z = 0.5
    settings.AMANAH_MONITOR_ENUMERATION_SEARCHES = 1
    compliance_officer.email = "officer@amanah.example"
    compliance_officer.save()
    canary = make_canary()
    assign(support_agent, canary)
    with django_capture_on_commit_callbacks(execute=True):
        reveal_open(
            actor=support_agent,
            customer=canary,
            fields=["email", "phone"],
            reason="Customer asked for a callback",
        )
        lookup_record(staff=support_agent, kind=LookupKind.SEARCH, search_by="email")
        rules_evaluate()

    alerts = list(Alert.objects.values("rule", "evidence", "dedupe_key"))
    assert {a["rule"] for a in alerts} == {"reveal_volume", "enumeration"}
    text = json.dumps(alerts) + "".join(m.subject + m.body for m in mail.outbox)
    assert len(mail.outbox) == 2
    for value in CANARY.values():
        assert value not in text
    for alert in alerts:
        assert all(
            isinstance(v, int | float | str) or v is None
            for v in alert["evidence"].values()
        )


# Lookups -----------------------------------------------------------------------------


def test_a_lookup_keeps_the_kind_and_id_only(support_agent):
    lookup = lookup_record(
        staff=support_agent,
        kind=LookupKind.NOT_FOUND,
        customer_id="1f0e0a52-1111-4a5b-9c7d-000000000001",
    )
    assert str(lookup.customer_id) == "1f0e0a52-1111-4a5b-9c7d-000000000001"
    garbled = lookup_record(
        staff=support_agent, kind=LookupKind.NOT_FOUND, customer_id="not-a-uuid"
    )
    assert garbled.customer_id is None


def test_an_unknown_lookup_kind_is_refused(support_agent):
    with pytest.raises(AlertError, match="Unknown lookup kind"):
        lookup_record(staff=support_agent, kind="peek")
    assert not StaffLookup.objects.exists()


def test_old_lookups_are_pruned(support_agent, settings):
    settings.AMANAH_MONITOR_LOOKUP_DAYS = 30
    lookups(support_agent, kind=LookupKind.SEARCH, at=NOON - timedelta(days=31))
    lookups(support_agent, kind=LookupKind.SEARCH, at=NOON - timedelta(days=29))
    assert lookups_prune(now=NOON) == 1
    assert StaffLookup.objects.count() == 1


# Handling ----------------------------------------------------------------------------


def test_acknowledge_an_open_alert(compliance_officer):
    alert = make_alert()
    alert = alert_acknowledge(actor=compliance_officer, alert=alert)
    assert alert.status == AlertStatus.ACKNOWLEDGED
    assert alert.handled_by == compliance_officer
    assert alert.handled_at is not None
    assert _actions() == ["alert.acknowledged"]


def test_acknowledge_twice_is_refused(compliance_officer):
    alert = alert_acknowledge(actor=compliance_officer, alert=make_alert())
    with pytest.raises(AlertError, match="Only an open alert"):
        alert_acknowledge(actor=compliance_officer, alert=alert)
    assert _actions() == ["alert.acknowledged"]


@pytest.mark.parametrize(
    "handle",
    [
        lambda actor, alert: alert_acknowledge(actor=actor, alert=alert),
        lambda actor, alert: alert_dismiss(actor=actor, alert=alert, reason="Fine."),
        lambda actor, alert: alert_escalate(actor=actor, alert=alert),
        lambda actor, alert: alert_suspend_reveals(actor=actor, alert=alert),
    ],
    ids=["acknowledge", "dismiss", "escalate", "suspend"],
)
def test_agents_may_not_handle_alerts(support_agent, handle):
    alert = make_alert(staff=support_agent)
    with pytest.raises(Forbidden):
        handle(support_agent, alert)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN
    assert alert.handled_by is None
    assert not AuditEvent.objects.exists()
    assert not Incident.objects.exists()


def test_dismiss_with_a_reason(privacy_admin):
    alert = alert_dismiss(
        actor=privacy_admin,
        alert=make_alert(),
        reason="  Agent was testing the new search page with QA.  ",
    )
    assert alert.status == AlertStatus.DISMISSED
    assert alert.reason == "Agent was testing the new search page with QA."
    event = AuditEvent.objects.get()
    assert event.action == "alert.dismissed"
    assert event.details == {"reason": alert.reason}


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("", "Say why"),
        ("   ", "Say why"),
        ("x" * 501, "under 500"),
        ("Customer jane@example.com called", "personal data"),
        ("Card 4242 4242 4242 4242 was read", "personal data"),
    ],
)
def test_dismiss_without_a_proper_reason_writes_nothing(
    compliance_officer, reason, message
):
    alert = make_alert()
    with pytest.raises(AlertError, match=message):
        alert_dismiss(actor=compliance_officer, alert=alert, reason=reason)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN
    assert alert.reason == ""
    assert not AuditEvent.objects.exists()


def test_a_handled_alert_cannot_be_dismissed(compliance_officer):
    alert = alert_dismiss(actor=compliance_officer, alert=make_alert(), reason="Ok.")
    with pytest.raises(AlertError, match="handled already"):
        alert_dismiss(actor=compliance_officer, alert=alert, reason="Again.")


def test_escalate_registers_a_suspected_breach_and_links_it(
    compliance_officer, support_agent
):
    alert = make_alert(staff=support_agent, severity="high", rule="enumeration")
    alert = alert_acknowledge(actor=compliance_officer, alert=alert)

    alert = alert_escalate(actor=compliance_officer, alert=alert)

    incident = Incident.objects.get()
    assert alert.incident == incident
    assert alert.status == AlertStatus.ESCALATED
    assert incident.kind == "suspected_breach"
    assert incident.severity == "high"
    assert f"alert #{alert.pk}" in incident.title
    assert "not_found=12" in incident.risk_reasoning
    assert incident.created_by == compliance_officer
    assert _actions() == ["alert.acknowledged", "incident.created", "alert.escalated"]
    escalated = AuditEvent.objects.get(action="alert.escalated")
    assert escalated.details == {"incident": str(incident.pk)}


def test_a_dismissed_alert_cannot_be_escalated(compliance_officer):
    alert = alert_dismiss(actor=compliance_officer, alert=make_alert(), reason="Ok.")
    with pytest.raises(AlertError, match="handled already"):
        alert_escalate(actor=compliance_officer, alert=alert)
    assert not Incident.objects.exists()


def test_suspend_reveals_ends_only_that_agents_live_reveals(
    compliance_officer, support_agent, privacy_admin
):
    customer = make_customer()
    _live_reveal(support_agent, customer)
    _live_reveal(privacy_admin, customer)
    reveals(support_agent, customer, at=timezone.now() - timedelta(hours=2))  # over
    alert = make_alert(staff=support_agent)

    assert alert_suspend_reveals(actor=compliance_officer, alert=alert) == 1

    assert Reveal.objects.filter(status=RevealStatus.SUSPENDED).count() == 1
    assert Reveal.objects.get(status=RevealStatus.SUSPENDED).staff == support_agent
    assert Reveal.objects.filter(staff=privacy_admin, status="granted").exists()
    alert.refresh_from_db()
    assert alert.reveals_suspended_at is not None
    assert alert.status == AlertStatus.OPEN
    suspended = AuditEvent.objects.get(action="reveal.suspended")
    assert suspended.actor == compliance_officer
    assert suspended.details["count"] == 1
    assert suspended.details["cause"] == f"alert:{alert.pk}"


def test_suspended_reveals_still_count_towards_the_hourly_limit(
    compliance_officer, support_agent, settings
):
    from apps.access.errors import RateLimited, RevealsSuspended

    settings.AMANAH_REVEALS_PER_HOUR = 1
    customer = make_customer()
    assign(support_agent, customer)
    reveal_open(
        actor=support_agent,
        customer=customer,
        fields=["email"],
        reason="Customer asked for a callback",
    )
    alert = make_alert(staff=support_agent)
    alert_suspend_reveals(actor=compliance_officer, alert=alert)
    # While the suspension stands, that is what the agent is told.
    with pytest.raises(RevealsSuspended):
        reveal_open(
            actor=support_agent,
            customer=customer,
            fields=["email"],
            reason="Customer asked for a callback",
        )
    # Once it is lifted, the suspended reveal still counts: no fresh allowance.
    alert_dismiss(actor=compliance_officer, alert=alert, reason="Reviewed, fine.")
    with pytest.raises(RateLimited):
        reveal_open(
            actor=support_agent,
            customer=customer,
            fields=["email"],
            reason="Customer asked for a callback",
        )


def test_suspend_needs_a_staff_member_and_a_live_alert(compliance_officer):
    system = make_alert(staff=None, rule="key_rotation_off_schedule")
    with pytest.raises(AlertError, match="names no staff member"):
        alert_suspend_reveals(actor=compliance_officer, alert=system)
    assert not AuditEvent.objects.exists()


def test_a_dismissed_alert_cannot_suspend_reveals(compliance_officer, support_agent):
    _live_reveal(support_agent, make_customer())
    alert = alert_dismiss(
        actor=compliance_officer, alert=make_alert(staff=support_agent), reason="Ok."
    )
    with pytest.raises(AlertError, match="dismissed"):
        alert_suspend_reveals(actor=compliance_officer, alert=alert)
    assert Reveal.objects.get().status == RevealStatus.GRANTED
