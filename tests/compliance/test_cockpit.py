"""The cockpit at /compliance/: live counts, each linking to its list, red only where
action is due, all clear when nothing waits; and a fixed number of queries however
much data there is."""

import re
from datetime import timedelta
from itertools import count

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditCheckpoint, ChainVerification
from apps.compliance.models import ProcessingActivity
from apps.incidents.models import Incident, IncidentNotice, NoticeWording
from apps.incidents.services import deadline_notified_record
from apps.monitoring.models import Alert, AlertStatus
from apps.requests.models import DataRequest
from apps.requests.services import request_open
from apps.retention.models import DisposalProgress, DisposalRun, RetentionPolicy
from apps.retention.services import customer_erase
from tests.accounts.helpers import sign_in
from tests.compliance.cockpit_data import overdue_everywhere
from tests.customers.factories import make_customer
from tests.incidents.factories import affect, make_incident
from tests.portal.factories import make_account
from tests.retention.factories import aged_customer

pytestmark = pytest.mark.django_db

HOME = "/compliance/"
_keys = count()


def audited(
    *, verified_ago=timedelta(hours=3), checkpoint_ago=timedelta(hours=2), ok=True
):
    """A chain verification and a checkpoint, that long ago."""
    now = timezone.now()
    ChainVerification.objects.create(
        verified_at=now - verified_ago,
        ok=ok,
        count=42,
        head_seq=42,
        reason="" if ok else "event 7 was edited",
        source="task",
    )
    AuditCheckpoint.objects.create(
        taken_at=now - checkpoint_ago,
        seq=40,
        count=40,
        hash="a" * 64,
        path="/var/lib/amanah/checkpoints/40.json",
        kid="test",
    )


def alert(severity: str, status: str = AlertStatus.OPEN) -> Alert:
    return Alert.objects.create(
        rule="bulk_reads",
        severity=severity,
        status=status,
        dedupe_key=f"cockpit-{next(_keys)}",
        created_at=timezone.now(),
    )


def breach(actor, *, aware_hours_ago: float, title="Support tool exposed contacts"):
    """A GDPR breach (10 people in Germany): the authority is owed notice 72 hours
    after awareness."""
    aware = timezone.now() - timedelta(hours=aware_hours_ago)
    incident = make_incident(
        actor,
        title=title,
        occurred_at=aware - timedelta(hours=2),
        detected_at=aware - timedelta(hours=1),
        aware_at=aware,
    )
    affect(incident, {("DE", ""): 10})
    return incident


def request_due_in(days: float) -> DataRequest:
    customer = make_account(email=f"cockpit{next(_keys)}@example.com")
    request = request_open(actor=customer.user, customer=customer, kind="access")
    DataRequest.objects.filter(pk=request.pk).update(
        due_at=timezone.now() + timedelta(days=days)
    )
    return request


def panel(html: str, name: str) -> str:
    """The HTML of one tile."""
    end = r'</li>\s*(?=<li class="panel|</ul>\s*</section>)'
    match = re.search(rf'<li class="panel[^"]*" id="tile-{name}">.*?{end}', html, re.S)
    assert match, name
    return match.group(0)


def is_red(html: str, name: str) -> bool:
    head = re.search(rf'<li class="panel([^"]*)" id="tile-{name}">', html)
    assert head, name
    return "urgent" in head.group(1)


def page(client, user) -> str:
    sign_in(client, user)
    response = client.get(HOME)
    assert response.status_code == 200
    return response.content.decode()


# All clear, and what turns a tile red


def test_all_clear_when_nothing_waits(client, compliance_officer):
    audited()
    html = page(client, compliance_officer)
    assert 'id="all-clear"' in html
    assert "All clear" in html
    assert "urgent" not in html
    assert "Action due" not in html


def test_a_chain_never_verified_is_red_and_not_all_clear(client, compliance_officer):
    html = page(client, compliance_officer)
    assert "All clear" not in html
    assert is_red(html, "audit")
    assert "never" in panel(html, "audit")
    assert "none taken" in panel(html, "audit")
    for calm in ("retention", "alerts", "incidents", "requests"):
        assert not is_red(html, calm), calm


@pytest.mark.parametrize(
    ("kwargs", "shown"),
    [
        ({"verified_ago": timedelta(days=3)}, "3\xa0days ago"),
        ({"checkpoint_ago": timedelta(days=3)}, "taken 3\xa0days ago"),
        ({"ok": False}, "event 7 was edited"),
    ],
)
def test_a_stale_or_failed_check_is_red(client, compliance_officer, kwargs, shown):
    audited(**kwargs)
    html = page(client, compliance_officer)
    assert is_red(html, "audit")
    assert shown in panel(html, "audit")
    assert "All clear" not in html


def test_a_fresh_intact_chain_is_calm(client, compliance_officer):
    audited()
    tile = panel(page(client, compliance_officer), "audit")
    assert "intact, 42 events, 3\xa0hours ago" in tile
    assert "taken 2\xa0hours ago (event 40)" in tile
    assert f'href="{reverse("audit:verify")}"' in tile


# Retention


def test_overdue_records_per_policy_are_red_and_link_to_the_report(
    client, compliance_officer
):
    audited()
    for _ in range(3):
        aged_customer(closed_days_ago=800)
    aged_customer(closed_days_ago=10)  # not due
    html = page(client, compliance_officer)
    tile = panel(html, "retention")
    assert is_red(html, "retention")
    assert "<strong>3</strong> overdue records" in tile
    report = reverse("retention:report")
    assert f'href="{report}#policy-closed-accounts"' in tile
    assert '<code>closed-accounts</code></a>: <strong class="bad">3</strong>' in tile
    assert "inactive-customers" not in tile  # nothing overdue there
    assert "Last disposal run:\n      none yet." in tile


def test_the_report_has_the_anchors_the_cockpit_links_to(client, compliance_officer):
    sign_in(client, compliance_officer)
    html = client.get(reverse("retention:report")).content.decode()
    assert 'id="policy-closed-accounts"' in html
    assert 'id="runs"' in html


def test_the_last_disposal_run_completed_is_calm(client, compliance_officer):
    audited()
    run = DisposalRun.objects.create(
        started_at=timezone.now() - timedelta(hours=5),
        finished_at=timezone.now() - timedelta(hours=5),
        status="completed",
        batch_size=500,
    )
    for code, n in (("closed-accounts", 12), ("access-log", 30)):
        DisposalProgress.objects.create(
            run=run, policy=RetentionPolicy.objects.get(code=code), disposed=n
        )
    html = page(client, compliance_officer)
    tile = panel(html, "retention")
    assert not is_red(html, "retention")
    assert "completed</a>" in tile
    assert "(5\xa0hours ago); 42 records disposed." in tile
    assert "No record is past its retention period" in tile
    assert "All clear" in html


def test_a_failed_disposal_run_is_red_with_its_error(client, compliance_officer):
    audited()
    DisposalRun.objects.create(
        started_at=timezone.now() - timedelta(hours=1),
        status="failed",
        batch_size=500,
        error="database timeout",
    )
    html = page(client, compliance_officer)
    tile = panel(html, "retention")
    assert is_red(html, "retention")
    assert '<strong class="bad">failed</strong>' in tile
    assert "database timeout" in tile
    assert f'href="{reverse("retention:report")}#runs"' in tile


# Alerts


def test_open_alerts_by_severity_red_only_for_high(client, compliance_officer):
    audited()
    alert("low")
    alert("medium")
    alert("high", status=AlertStatus.DISMISSED)  # handled: not counted
    html = page(client, compliance_officer)
    tile = panel(html, "alerts")
    assert not is_red(html, "alerts")
    assert "<strong>2</strong> open alerts" in tile
    assert "All clear" not in html
    alert("high")
    html = page(client, compliance_officer)
    tile = panel(html, "alerts")
    assert is_red(html, "alerts")
    url = reverse("monitoring:list")
    high = f'<a href="{url}?status=open&amp;severity=high">High</a>'
    assert f'{high}: <strong class="bad">1</strong>' in tile
    assert f'<a href="{url}?status=open&amp;severity=low">Low</a>: 1' in tile


def test_the_alerts_list_filters_by_severity(client, compliance_officer):
    high, low = alert("high"), alert("low")
    sign_in(client, compliance_officer)
    html = client.get(
        reverse("monitoring:list"), {"status": "open", "severity": "high"}
    ).content.decode()
    assert f'id="alert-{high.pk}"' in html
    assert f'id="alert-{low.pk}"' not in html
    assert "Open alerts of high severity" in html
    # An unknown severity is no filter.
    html = client.get(reverse("monitoring:list"), {"severity": "x"}).content.decode()
    assert f'id="alert-{low.pk}"' in html


# Incidents


def test_the_nearest_deadline_and_the_time_left(client, compliance_officer):
    audited()
    far = breach(compliance_officer, aware_hours_ago=2, title="Later breach")
    near = breach(compliance_officer, aware_hours_ago=20, title="Vendor export")
    html = page(client, compliance_officer)
    tile = panel(html, "incidents")
    assert "<strong>2</strong> open incidents" in tile
    nearest = re.search(r'<p id="nearest-deadline">(.*?)</p>', tile, re.S).group(1)
    assert reverse("incidents:detail", args=[near.pk]) in nearest
    assert "Supervisory authority (EU GDPR)" in nearest
    # 72 hours from awareness 20 hours ago: 2 days, 4 hours left (not close: calm,
    # but not all clear).
    assert "<strong>2\xa0days, 3\xa0hours left</strong>" in nearest or (
        "<strong>2\xa0days, 4\xa0hours left</strong>" in nearest
    )
    assert not is_red(html, "incidents")
    assert "All clear" not in html
    assert reverse("incidents:detail", args=[far.pk]) in tile


def nearest_of(html: str) -> str:
    tile = panel(html, "incidents")
    found = re.search(r'<p id="nearest-deadline">(.*?)</p>', tile, re.S)
    return found.group(1) if found else tile


def test_the_nearest_deadline_counts_the_erased_since_and_those_not_reached(
    client, compliance_officer, privacy_admin
):
    """250 Texans, one erased since the breach: the attorney general is still owed.
    Once told, the people's deadline stays open while a notice reached only one."""
    audited()
    aware = timezone.now() - timedelta(hours=1)
    incident = make_incident(
        compliance_officer,
        title="Texas export",
        occurred_at=aware - timedelta(hours=2),
        detected_at=aware - timedelta(hours=1),
        aware_at=aware,
    )
    texan = make_customer(country="US", region="US-TX")
    incident.affected.create(customer_id=texan.pk, country="US", region="US-TX")
    affect(incident, {("US", "US-TX"): 249})
    customer_erase(actor=privacy_admin, customer=texan)

    assert "notify: Attorney general (Texas)" in nearest_of(
        page(client, compliance_officer)
    )

    deadline_notified_record(
        actor=compliance_officer,
        incident=incident,
        rule_code="us-tx-attorney-general",
        audience="attorney_general",
        notified_at=timezone.now() - timedelta(minutes=5),
        recipient="Texas attorney general",
    )
    wording = NoticeWording.objects.create(
        incident=incident, digest="d", language="en", subject="s", body="b"
    )
    IncidentNotice.objects.bulk_create(
        IncidentNotice(
            incident=incident,
            customer_id=person.customer_id,
            channel="email",
            wording=wording,
            queued_at=aware,
            status="failed",
        )
        for person in incident.affected.all()
    )
    IncidentNotice.objects.filter(pk=IncidentNotice.objects.first().pk).update(
        status="sent", sent_at=timezone.now()
    )

    assert "notify: Affected people (Texas)" in nearest_of(
        page(client, compliance_officer)
    )


def test_a_deadline_within_a_day_is_red(client, compliance_officer):
    audited()
    breach(compliance_officer, aware_hours_ago=60)
    html = page(client, compliance_officer)
    assert is_red(html, "incidents")
    assert re.search(
        r'<strong class="bad">1[01]\xa0hours(, \d+\xa0minutes)? left</strong>',
        panel(html, "incidents"),
    )


def test_a_passed_deadline_is_red_and_says_so(client, compliance_officer):
    audited()
    breach(compliance_officer, aware_hours_ago=80)
    html = page(client, compliance_officer)
    assert is_red(html, "incidents")
    assert re.search(r'<strong class="bad">passed 8\xa0hours', panel(html, "incidents"))


def test_five_incidents_are_listed_and_all_are_counted(client, compliance_officer):
    audited()
    for hours in range(6):
        breach(compliance_officer, aware_hours_ago=10 + hours, title=f"Breach {hours}")
    tile = panel(page(client, compliance_officer), "incidents")
    assert "<strong>6</strong> open incidents" in tile
    # The nearest above, the next four below it: five, each linked once.
    assert tile.count('<li><a href="/compliance/incidents/') == 4
    assert tile.count('href="/compliance/incidents/') - tile.count("?status=open") == 5
    assert "Breach 0" not in tile  # the latest deadline of the six
    assert "All 6 open incidents" in tile


def test_an_outage_is_open_without_a_deadline(client, compliance_officer):
    audited()
    make_incident(compliance_officer, kind="outage", title="Checkout down")
    html = page(client, compliance_officer)
    tile = panel(html, "incidents")
    assert "<strong>1</strong> open incident" in tile
    assert "No open legal deadline." in tile
    assert not is_red(html, "incidents")


# Requests


def test_requests_due_within_7_days_and_overdue(client, compliance_officer):
    audited()
    request_due_in(3)
    request_due_in(20)  # later: not counted
    html = page(client, compliance_officer)
    tile = panel(html, "requests")
    assert not is_red(html, "requests")
    queue = reverse("requests:queue")
    assert (
        f'<a href="{queue}?due=week">Due within 7 days</a>: <strong>1</strong>' in tile
    )
    assert f'<a href="{queue}?due=overdue">Overdue</a>: none' in tile
    request_due_in(-1)
    html = page(client, compliance_officer)
    assert is_red(html, "requests")
    assert '<strong class="bad">1 overdue</strong>' in panel(html, "requests")


def test_the_queue_filters_by_due_date(client, privacy_admin):
    soon, later, late = request_due_in(3), request_due_in(20), request_due_in(-1)
    sign_in(client, privacy_admin)
    queue = reverse("requests:queue")

    def shown(params) -> set:
        html = client.get(queue, params).content.decode()
        return {
            r
            for r in (soon, later, late)
            if reverse("requests:detail", args=[r.pk]) in html
        }

    assert shown({"due": "week"}) == {soon}
    assert shown({"due": "overdue"}) == {late}
    assert shown({}) == {soon, later, late}
    assert shown({"due": "nonsense"}) == {soon, later, late}
    DataRequest.objects.filter(pk=late.pk).update(status="completed")
    html = client.get(queue, {"due": "overdue"}).content.decode()
    assert "No request is overdue." in html


# Who may see it, and what it costs


@pytest.mark.parametrize("role", ["support_agent", "delivery_agent", "customer_user"])
def test_only_compliance_roles_see_it(client, request, role):
    user = request.getfixturevalue(role)
    sign_in(client, user)
    assert client.get(HOME).status_code in (302, 403)


def test_every_task_is_still_linked(client, compliance_officer):
    html = page(client, compliance_officer)
    for name in (
        "requests:queue",
        "incidents:list",
        "monitoring:list",
        "inventory:list",
        "compliance:ropa",
        "retention:report",
        "retention:policies",
        "retention:holds",
        "staff:oversight",
        "audit:event-list",
        "data-policy",
    ):
        assert f'href="{reverse(name)}"' in html, name


def test_just_now_rather_than_zero_minutes(client, compliance_officer):
    audited(verified_ago=timedelta(seconds=20), checkpoint_ago=timedelta(seconds=5))
    tile = panel(page(client, compliance_officer), "audit")
    assert "intact, 42 events, just now" in tile
    assert "taken just now (event 40)" in tile
    assert "0\xa0minutes" not in tile


# Incidents: the link to the open ones, each incident once


def test_the_count_links_to_the_open_incidents_only(client, compliance_officer):
    audited()
    near = breach(compliance_officer, aware_hours_ago=20, title="Vendor export")
    other = make_incident(compliance_officer, kind="outage", title="Checkout down")
    done = make_incident(compliance_officer, kind="outage", title="Old outage")
    Incident.objects.filter(pk=done.pk).update(status="resolved")
    tile = panel(page(client, compliance_officer), "incidents")
    listed = reverse("incidents:list") + "?status=open"
    assert f'href="{listed}"><strong>2</strong> open incidents' in tile
    # The nearest is linked once (by its deadline), the other in the list below.
    assert tile.count(reverse("incidents:detail", args=[near.pk])) == 1
    assert tile.count(reverse("incidents:detail", args=[other.pk])) == 1

    html = client.get(listed).content.decode()
    assert "Vendor export" in html
    assert "Checkout down" in html
    assert "Old outage" not in html
    assert "Showing the open ones" in html
    everything = client.get(reverse("incidents:list")).content.decode()
    assert "Old outage" in everything


def test_the_open_filter_says_when_none_is_open(client, compliance_officer):
    done = make_incident(compliance_officer, kind="outage", title="Old outage")
    Incident.objects.filter(pk=done.pk).update(status="resolved")
    sign_in(client, compliance_officer)
    html = client.get(reverse("incidents:list"), {"status": "open"}).content.decode()
    assert "No incident is open." in html
    assert "Old outage" not in html


# The record of processing activities: reviews due, never red


def test_activities_due_for_review_link_to_the_record_and_are_not_red(
    client, compliance_officer, privacy_admin
):
    audited()
    activities = ProcessingActivity.objects.order_by("code")
    total = activities.count()
    assert total >= 3  # the seeded record
    codes = list(activities.values_list("code", flat=True))
    ProcessingActivity.objects.filter(code=codes[0]).update(
        reviewed_at=timezone.localdate() - timedelta(days=400)
    )
    ProcessingActivity.objects.filter(code__in=codes[1:]).update(
        reviewed_at=timezone.localdate() - timedelta(days=10)
    )
    ProcessingActivity.objects.filter(code=codes[1]).update(reviewed_at=None)
    html = page(client, compliance_officer)
    tile = panel(html, "ropa")
    ropa = reverse("compliance:ropa")
    assert f'href="{ropa}"><strong>2</strong> processing activities due for review' in (
        tile
    )
    assert "1 never reviewed, 1 last reviewed more than a year ago." in tile
    assert not is_red(html, "ropa")
    assert (
        "attention" in re.search(r'<li class="panel([^"]*)" id="tile-ropa">', html)[1]
    )
    assert "All clear" in html  # a review is housekeeping, not action due

    ProcessingActivity.objects.update(reviewed_at=timezone.localdate())
    tile = panel(client.get(HOME).content.decode(), "ropa")
    assert "Every processing activity was reviewed within the last year." in tile


def test_no_javascript(client, compliance_officer):
    """Plain links and HTML (390 px wide: the browser test)."""
    html = page(client, compliance_officer)
    assert "<script" not in html.split("<main", 1)[1]


# The session, the user and their second factor (3); the policies and their overdue
# counts (4: from the clock histograms, apps/retention/clocks.py); the last run (1);
# open alerts (1); incidents, rules, holidays, affected counts, notifications and
# notices' progress (6); requests (1); the last verification and checkpoint (2);
# processing activities due for review (1).
QUERIES = 19


@pytest.mark.postgres
def test_the_cockpit_reads_a_fixed_number_of_queries(
    client,
    compliance_officer,
    support_agent,
    privacy_admin,
    django_assert_num_queries,
):
    sign_in(client, compliance_officer)
    for extra in (0, 3):
        overdue_everywhere(agent=support_agent, admin=privacy_admin, extra=extra)
        for _ in range(extra + 1):
            breach(privacy_admin, aware_hours_ago=10)
            make_incident(privacy_admin, kind="outage", title="Checkout down")
            alert("high")
            alert("low")
            request_due_in(3)
            request_due_in(-2)
        RetentionPolicy.objects.create(
            code=f"log-{extra}",
            covers="access_log",
            period_days=30 + extra,
            trigger="created",
            action="delete",
            legal_basis="Test.",
            description="Test.",
        )
        audited()
        client.get(HOME)  # stamps the session's last-seen time
        with django_assert_num_queries(QUERIES):
            response = client.get(HOME)
        assert response.status_code == 200
        assert "Action due" in response.content.decode()
