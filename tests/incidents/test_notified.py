"""Breach notifications recorded (issue 19): each deadline is open, met or met late;
only an open deadline whose time has passed is overdue; the API records them; the
cockpit's nearest open deadline of every incident."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.incidents.errors import IncidentConflict, IncidentError
from apps.incidents.models import DeadlineNotification, IncidentNotice, NoticeWording
from apps.incidents.selectors import deadlines_for, incidents_open_nearest_deadline
from apps.incidents.services import deadline_notified_record, incident_transition
from apps.retention.services import customer_erase
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer
from tests.incidents.factories import affect, make_incident

pytestmark = pytest.mark.django_db

GDPR = "eu-gdpr-authority"


def gdpr_incident(actor, *, hours_ago: float = 20, **overrides):
    aware = timezone.now() - timedelta(hours=hours_ago)
    incident = make_incident(
        actor,
        aware_at=aware,
        detected_at=aware,
        occurred_at=aware - timedelta(hours=1),
        **overrides,
    )
    affect(incident, {("DE", ""): 10})
    return incident


def by_code(incident):
    return {d.rule_code: d for d in deadlines_for(incident=incident)}


def record(actor, incident, **overrides):
    values = {
        "rule_code": GDPR,
        "audience": "authority",
        "notified_at": timezone.now() - timedelta(hours=1),
        "recipient": "Berliner Beauftragte für Datenschutz",
        "reference": "BlnBDI-2026-117",
    }
    values.update(overrides)
    return deadline_notified_record(actor=actor, incident=incident, **values)


def test_an_open_deadline_turns_met_when_the_authority_is_told(compliance_officer):
    incident = gdpr_incident(compliance_officer)
    assert by_code(incident)[GDPR].status == "open"

    record(compliance_officer, incident)

    deadline = by_code(incident)[GDPR]
    assert deadline.status == "met"
    assert deadline.recipient == "Berliner Beauftragte für Datenschutz"
    assert deadline.reference == "BlnBDI-2026-117"
    event = AuditEvent.objects.get(action="incident.notified")
    assert event.details == {"rule": GDPR, "audience": "authority", "late": False}


def test_a_deadline_met_late_is_never_overdue_and_an_open_one_past_due_is(
    compliance_officer,
):
    incident = gdpr_incident(compliance_officer, hours_ago=100)
    deadline = by_code(incident)[GDPR]
    assert (deadline.status, deadline.missed) == ("open", True)

    record(compliance_officer, incident, notified_at=timezone.now())

    deadline = by_code(incident)[GDPR]
    assert (deadline.status, deadline.missed) == ("met_late", False)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"rule_code": "no-such-rule"}, "rule"),
        ({"rule_code": "us-ca-individuals"}, "rule"),  # a rule this one does not owe
        ({"audience": "individuals"}, "audience"),
        ({"notified_at": timezone.now() + timedelta(hours=1)}, "notified_at"),
        ({"notified_at": timezone.now() - timedelta(days=30)}, "notified_at"),
        ({"recipient": "  "}, "recipient"),
    ],
)
def test_a_notification_that_does_not_fit_is_refused(
    compliance_officer, overrides, field
):
    incident = gdpr_incident(compliance_officer)
    if "notified_at" in overrides and overrides["notified_at"] > timezone.now():
        overrides["notified_at"] = timezone.now() + timedelta(hours=1)
    with pytest.raises(IncidentError) as refused:
        record(compliance_officer, incident, **overrides)
    assert refused.value.field == field
    assert not DeadlineNotification.objects.exists()


def queue_for_everyone(incident, channels=("email", "in_app")):
    now = timezone.now()
    wording = NoticeWording.objects.create(
        incident=incident, digest="d", language="en", subject="s", body="b"
    )
    IncidentNotice.objects.bulk_create(
        IncidentNotice(
            incident=incident,
            customer_id=person.customer_id,
            channel=channel,
            wording=wording,
            queued_at=now,
        )
        for person in incident.affected.all()
        for channel in channels
    )


def test_individuals_count_as_told_when_everyone_on_record_was_sent_one(
    privacy_admin,
):
    """Met once nothing is pending and every affected person still on record was sent
    at least one notice, on any channel; someone whose every notice failed was not
    told, however many others were."""
    incident = gdpr_incident(privacy_admin)
    affect(incident, {("ID", "ID-JK"): 2})
    queue_for_everyone(incident)
    assert by_code(incident)["id-uupdp-individuals"].status == "open"

    sent_at = timezone.now() - timedelta(hours=2)
    unlucky = IncidentNotice.objects.filter(channel="email").order_by("pk").first()
    IncidentNotice.objects.filter(channel="email").exclude(pk=unlucky.pk).update(
        status="sent", sent_at=sent_at
    )
    IncidentNotice.objects.filter(channel="in_app").update(status="failed")
    assert by_code(incident)["id-uupdp-individuals"].unreached == 0  # one to go
    IncidentNotice.objects.filter(pk=unlucky.pk).update(status="failed")

    deadline = by_code(incident)["id-uupdp-individuals"]
    assert (deadline.status, deadline.notified_at, deadline.unreached) == (
        "open",
        None,
        1,
    )
    # Reached on another channel: told.
    later = sent_at + timedelta(hours=1)
    IncidentNotice.objects.filter(
        customer_id=unlucky.customer_id, channel="in_app"
    ).update(status="sent", sent_at=later)
    deadline = by_code(incident)["id-uupdp-individuals"]
    assert (deadline.status, deadline.notified_at, deadline.unreached) == (
        "met",
        later,
        0,
    )
    assert deadline.notified_by == "notices"
    assert by_code(incident)[GDPR].status == "open"  # the authority is another duty


def test_mostly_failed_notices_leave_the_people_open_until_recorded(
    client, privacy_admin
):
    incident = gdpr_incident(privacy_admin)
    queue_for_everyone(incident, channels=("email",))
    sent = IncidentNotice.objects.order_by("pk").first()
    IncidentNotice.objects.exclude(pk=sent.pk).update(status="failed")
    IncidentNotice.objects.filter(pk=sent.pk).update(
        status="sent", sent_at=timezone.now() - timedelta(hours=1)
    )
    people = "eu-gdpr-individuals"
    deadline = by_code(incident)[people]
    assert (deadline.status, deadline.unreached) == ("open", 9)
    [(_, nearest)] = incidents_open_nearest_deadline()
    assert nearest.rule_code == GDPR
    record(privacy_admin, incident)
    [(_, nearest)] = incidents_open_nearest_deadline()
    assert (nearest.rule_code, nearest.unreached) == (people, 9)

    sign_in(client, privacy_admin)
    url = reverse("incidents:detail", args=[incident.pk])
    html = client.get(url).content.decode()
    assert (
        "9 people not reached: record how they were told (e.g. a public "
        "communication)" in html
    )
    record(
        privacy_admin,
        incident,
        rule_code=people,
        audience="individuals",
        recipient="everyone affected, by a notice on the home page",
    )
    deadline = by_code(incident)[people]
    assert (deadline.status, deadline.notified_by) == ("met", "recorded")
    assert "not reached" not in client.get(url).content.decode()


def test_people_erased_since_their_notice_failed_are_not_waited_for(privacy_admin):
    customer = make_customer(country="DE", region="")
    incident = gdpr_incident(privacy_admin)
    incident.affected.create(customer_id=customer.pk, country="DE", region="")
    queue_for_everyone(incident, channels=("email",))
    sent_at = timezone.now() - timedelta(hours=1)
    IncidentNotice.objects.exclude(customer_id=customer.pk).update(
        status="sent", sent_at=sent_at
    )
    IncidentNotice.objects.filter(customer_id=customer.pk).update(status="failed")
    assert by_code(incident)["eu-gdpr-individuals"].unreached == 1

    customer_erase(actor=privacy_admin, customer=customer)

    deadline = by_code(incident)["eu-gdpr-individuals"]
    assert (deadline.status, deadline.notified_at) == ("met", sent_at)
    assert deadline.affected == 11  # erased since the incident: still affected


def test_a_resolved_incident_keeps_its_statuses_and_takes_no_more_records(
    compliance_officer,
):
    incident = gdpr_incident(compliance_officer)
    affect(incident, {("ID", "ID-JK"): 2})
    record(compliance_officer, incident)
    incident = incident_transition(
        actor=compliance_officer, incident=incident, status="resolved"
    )
    deadlines = by_code(incident)
    assert deadlines[GDPR].status == "met"
    assert deadlines["id-uupdp-authority"].status == "open"
    with pytest.raises(IncidentConflict):
        record(compliance_officer, incident, rule_code="id-uupdp-authority")


def test_the_nearest_open_deadline_of_every_incident_in_a_few_queries(
    compliance_officer,
):
    soon = gdpr_incident(compliance_officer, hours_ago=70)  # 2 h left
    later = gdpr_incident(compliance_officer, hours_ago=10)
    met = gdpr_incident(compliance_officer, hours_ago=71)
    record(compliance_officer, met)
    outage = make_incident(compliance_officer, kind="outage")
    resolved = gdpr_incident(compliance_officer)
    incident_transition(actor=compliance_officer, incident=resolved, status="resolved")
    for _ in range(5):
        gdpr_incident(compliance_officer, hours_ago=5)

    with CaptureQueriesContext(connection) as queries:
        rows = incidents_open_nearest_deadline()
    # incidents, holidays, rules, counts, notifications, notices: not per incident
    assert len(queries) <= 6

    incidents = [incident for incident, _ in rows]
    assert resolved not in incidents
    assert incidents[:2] == [soon, later]
    nearest = dict(rows)
    assert nearest[soon].rule_code == GDPR
    assert nearest[soon].status == "open"
    # The met incident's GDPR deadline is done: its nearest is the people's, which
    # has no fixed time; the outage has none.
    assert nearest[met] is None or nearest[met].rule_code != GDPR
    assert nearest[outage] is None
    assert incidents[-1] in (outage, met)


# The API ------------------------------------------------------------------------------


def api_for(user):
    api = APIClient()
    api.force_authenticate(user)
    return api


def body(**overrides):
    data = {
        "rule": GDPR,
        "audience": "authority",
        "notified_at": (timezone.now() - timedelta(hours=1)).isoformat(),
        "recipient": "Berliner Beauftragte für Datenschutz",
        "reference": "BlnBDI-2026-117",
    }
    data.update(overrides)
    return data


def test_the_api_records_a_notification_once(compliance_officer):
    incident = gdpr_incident(compliance_officer)
    api = api_for(compliance_officer)
    url = f"/api/v1/incidents/{incident.pk}/notified/"

    response = api.post(url, body(), format="json")

    assert response.status_code == 201, response.content
    answer = response.json()
    assert (answer["rule"], answer["audience"]) == (GDPR, "authority")
    assert answer["recorded_by"] == compliance_officer.username
    assert response.headers["Location"].endswith(f"/{incident.pk}/deadlines/")
    again = api.post(url, body(), format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "already_notified"
    assert again.json()["errors"][0]["field"] == "rule"
    deadlines = api.get(f"/api/v1/incidents/{incident.pk}/deadlines/").json()
    gdpr = next(d for d in deadlines if d["rule"] == GDPR)
    assert gdpr["status"] == "met"
    assert gdpr["notified_at"] == answer["notified_at"]
    assert gdpr["missed"] is False
    people = next(d for d in deadlines if d["rule"] == "eu-gdpr-individuals")
    assert (people["status"], people["notified_at"]) == ("open", None)


def test_the_api_replays_a_retried_record(compliance_officer):
    incident = gdpr_incident(compliance_officer)
    api = api_for(compliance_officer)
    url = f"/api/v1/incidents/{incident.pk}/notified/"
    data = body()
    first = api.post(url, data, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    second = api.post(url, data, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.headers["Idempotent-Replayed"] == "true"
    assert DeadlineNotification.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"rule": "no-such-rule"}, "rule"),
        ({"audience": "individuals"}, "audience"),
        ({"audience": "the press"}, "audience"),
        (
            {"notified_at": (timezone.now() + timedelta(days=1)).isoformat()},
            "notified_at",
        ),
        ({"recipient": ""}, "recipient"),
    ],
)
def test_the_api_names_the_field_at_fault(compliance_officer, overrides, field):
    incident = gdpr_incident(compliance_officer)
    response = api_for(compliance_officer).post(
        f"/api/v1/incidents/{incident.pk}/notified/", body(**overrides), format="json"
    )
    assert response.status_code == 400, response.content
    assert [e["field"] for e in response.json()["errors"]] == [field]
    assert not DeadlineNotification.objects.exists()


def test_the_api_refuses_wrong_roles_other_incidents_and_resolved_ones(
    compliance_officer, support_agent
):
    incident = gdpr_incident(compliance_officer)
    url = f"/api/v1/incidents/{incident.pk}/notified/"
    assert api_for(support_agent).post(url, body(), format="json").status_code == 403

    api = api_for(compliance_officer)
    # Another incident's rule: this one (Indonesians only) owes no GDPR deadline.
    other = make_incident(compliance_officer)
    affect(other, {("ID", "ID-JK"): 3})
    response = api.post(
        f"/api/v1/incidents/{other.pk}/notified/", body(), format="json"
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "rule"
    missing = "/api/v1/incidents/00000000-0000-0000-0000-000000000000/notified/"
    assert api.post(missing, body(), format="json").status_code == 404

    incident_transition(actor=compliance_officer, incident=incident, status="resolved")
    closed = api.post(url, body(), format="json")
    assert closed.status_code == 409
    assert closed.json()["code"] == "incident_resolved"
    assert not DeadlineNotification.objects.exists()


# The page -----------------------------------------------------------------------------


def test_the_page_records_a_notification_and_shows_the_deadline_met(
    client, compliance_officer
):
    incident = gdpr_incident(compliance_officer, hours_ago=60)
    sign_in(client, compliance_officer)
    url = reverse("incidents:detail", args=[incident.pk])
    html = client.get(url).content.decode()
    assert "Next deadline" in html
    assert "12\xa0hours left" in html or "11\xa0hours" in html
    assert "Record notification" in html

    when = timezone.localtime(timezone.now() - timedelta(hours=1))
    response = client.post(
        url,
        {
            "action": "notified",
            "deadline": GDPR,
            f"{GDPR}-rule": GDPR,
            f"{GDPR}-audience": "authority",
            f"{GDPR}-recipient": "Berliner Beauftragte",
            f"{GDPR}-notified_at": f"{when:%Y-%m-%dT%H:%M}",
            f"{GDPR}-reference": "BlnBDI-1",
        },
    )
    assert response.status_code == 302
    html = client.get(url).content.decode()
    assert 'data-status="met"' in html
    assert "to Berliner Beauftragte (ref. BlnBDI-1)" in html


def test_the_page_shows_a_refused_record_on_its_form(client, compliance_officer):
    incident = gdpr_incident(compliance_officer)
    sign_in(client, compliance_officer)
    when = timezone.localtime(timezone.now() + timedelta(days=1))
    response = client.post(
        reverse("incidents:detail", args=[incident.pk]),
        {
            "action": "notified",
            "deadline": GDPR,
            f"{GDPR}-rule": GDPR,
            f"{GDPR}-audience": "authority",
            f"{GDPR}-recipient": "Berliner Beauftragte",
            f"{GDPR}-notified_at": f"{when:%Y-%m-%dT%H:%M}",
        },
    )
    assert response.status_code == 400
    assert "It cannot be in the future." in response.content.decode()
    assert not DeadlineNotification.objects.exists()


def test_the_times_typed_name_their_zone(client, compliance_officer, settings):
    incident = gdpr_incident(compliance_officer)
    sign_in(client, compliance_officer)
    zone = settings.TIME_ZONE
    html = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert f">When ({zone})</label>" in html
    report = reverse("incidents:report", args=[incident.pk, GDPR])
    assert f">Sent at ({zone})</label>" in client.get(report).content.decode()


def test_a_refused_form_opens_its_section_and_the_page_jumps_to_it(
    client, compliance_officer
):
    incident = gdpr_incident(compliance_officer)
    sign_in(client, compliance_officer)
    url = reverse("incidents:detail", args=[incident.pk])
    html = client.get(url).content.decode()
    # Each form's action names its section: the answer opens there, without script.
    assert f'<tr id="notify-{GDPR}">' in html
    assert f'action="#notify-{GDPR}"' in html
    assert "<details><summary>Record notification: supervisory authority" in html
    for anchor in ("affected", "status-update", "timeline", "details"):
        assert f'id="{anchor}"' in html, anchor
        assert f'action="#{anchor}"' in html, anchor

    refused = client.post(
        url,
        {
            "action": "notified",
            "deadline": GDPR,
            f"{GDPR}-rule": GDPR,
            f"{GDPR}-audience": "authority",
            f"{GDPR}-notified_at": "",
            f"{GDPR}-recipient": "",
        },
    )
    assert refused.status_code == 400
    html = refused.content.decode()
    row = html[html.index(f'<tr id="notify-{GDPR}">') :]
    assert row.startswith(f'<tr id="notify-{GDPR}">')
    assert "<details open>" in row[:600]
    assert "This field is required." in row[: row.index("</details>")]

    bad = client.post(url, {"action": "affected", "scope": "list", "customer_ids": "x"})
    assert bad.status_code == 400
    html = bad.content.decode()
    assert "<details open><summary>Choose who is affected" in html

    done = client.post(
        url, {"action": "timeline", "text": "Rotated the vendor's keys."}
    )
    assert done.status_code == 302
    assert done.headers["Location"] == f"{url}#main"  # back to the message on top
