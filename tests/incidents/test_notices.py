from datetime import date, timedelta

import pytest
from django.core import mail
from django.db.models import ProtectedError
from django.utils import formats, timezone
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.customers.models import Customer
from apps.customers.registry import DataCategory
from apps.incidents import channels
from apps.incidents.errors import IncidentError, NoticeIncomplete
from apps.incidents.models import AffectedCustomer, Incident, IncidentNotice
from apps.incidents.notices import regime_for, render
from apps.incidents.services import (
    OUTCOME_UNKNOWN,
    affected_select,
    notices_claims_expire,
    notices_queue,
    notices_send_batch,
    status_publish,
    timeline_add,
)
from apps.incidents.tasks import notices_send_task
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer
from tests.errors import error_fields
from tests.incidents.factories import make_incident
from tests.portal.factories import PASSWORD, make_account

pytestmark = pytest.mark.django_db

ELEMENTS = {
    "what_happened": "x",
    "what_we_are_doing": "y",
    "what_you_can_do": "z",
    "contact": "privacy@amanah.example",
}


def render_notice(*, language="en", regime="standard", remedy=None, **elements):
    return render(
        elements={**ELEMENTS, **elements},
        language=language,
        regime=regime,
        when=date(2026, 11, 1),
        categories=[DataCategory.CONTACT],
        remedy=remedy,
    )


@pytest.mark.parametrize("missing", list(ELEMENTS))
def test_the_validator_refuses_a_notice_missing_an_element(missing):
    with pytest.raises(NoticeIncomplete, match=missing):
        render_notice(**{missing: " "})


def test_california_notices_use_the_five_headings_in_order():
    body = render_notice(regime=regime_for("US-CA")).body
    headings = [
        "What Happened",
        "What Information Was Involved",
        "What We Are Doing",
        "What You Can Do",
        "For More Information",
    ]
    positions = [body.index(h) for h in headings]
    assert positions == sorted(positions)


def test_a_notice_has_plain_headings_never_underlines():
    rendered = render_notice(remedy=("Voucher", "AB12"))
    assert "---" not in rendered.body
    assert "\n\nWhat happened\nx\nWhen: " in rendered.body
    assert "AB12" in rendered.body
    assert rendered.language == "en"


def test_queueing_refuses_an_incident_without_the_required_text(privacy_admin):
    incident = make_incident(privacy_admin, what_you_can_do="")
    make_customer()
    affected_select(actor=privacy_admin, incident=incident, scope="all")
    with pytest.raises(NoticeIncomplete, match="what_you_can_do"):
        notices_queue(actor=privacy_admin, incident=incident)
    assert not IncidentNotice.objects.exists()


def test_notices_go_by_email_and_in_app_but_never_email_to_a_compromised_mailbox(
    privacy_admin,
):
    incident = make_incident(
        privacy_admin, remedy_kind="voucher", remedy_description="A 20% voucher"
    )
    safe = make_customer(email="safe@example.com")
    exposed = make_customer(email="exposed@example.com")
    affected_select(
        actor=privacy_admin, incident=incident, scope="list", customer_ids=str(safe.pk)
    )
    AffectedCustomer.objects.create(
        incident=incident,
        customer_id=exposed.pk,
        country="ID",
        region="ID-JK",
        mailbox_compromised=True,
    )
    assert notices_queue(actor=privacy_admin, incident=incident) == 4
    notices_send_task.delay(str(incident.pk))
    assert [m.to for m in mail.outbox] == [["safe@example.com"]]
    channels_of = dict(
        IncidentNotice.objects.filter(customer_id=exposed.pk).values_list(
            "channel", "status"
        )
    )
    assert channels_of == {"sms": "sent", "in_app": "sent"}
    offer = AffectedCustomer.objects.get(customer_id=safe.pk)
    assert offer.remedy_code
    assert offer.remedy_code in mail.outbox[0].body
    assert "safe@example.com" not in IncidentNotice.objects.first().body


def test_a_worker_that_dies_while_sending_never_sends_a_notice_twice(
    privacy_admin, monkeypatch, settings
):
    """The claim is committed before the send: the notice the worker died on is not
    sent again; once no send could still be under way it fails as "outcome unknown"
    (its in-app twin, which nothing outside saw, is sent)."""
    incident = make_incident(privacy_admin)
    for i in range(6):
        make_customer(email=f"c{i}@example.com")
    affected_select(actor=privacy_admin, incident=incident, scope="all")
    notices_queue(actor=privacy_admin, incident=incident)

    real_send = channels.EmailChannel.send
    sent = {"n": 0}

    class WorkerDied(BaseException):
        """The process goes away mid-send (an adapter's error is only a retry)."""

    def crash_on_fourth(self, *, notice, address):
        sent["n"] += 1
        if sent["n"] == 4:
            raise WorkerDied
        return real_send(self, notice=notice, address=address)

    monkeypatch.setattr(channels.EmailChannel, "send", crash_on_fourth)

    def send_all() -> None:
        while notices_send_batch(incident_id=incident.pk, batch_size=4):
            pass

    with pytest.raises(WorkerDied):
        send_all()
    assert len(mail.outbox) == 3
    monkeypatch.setattr(channels.EmailChannel, "send", real_send)
    send_all()
    [claimed] = IncidentNotice.objects.filter(status="sending")
    assert claimed.channel == "email"
    assert len(mail.outbox) == 5  # every other email, once

    later = timezone.now() + timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 61)
    assert notices_claims_expire(now=later) == 1
    claimed.refresh_from_db()
    assert (claimed.status, claimed.error) == ("failed", OUTCOME_UNKNOWN)
    send_all()
    recipients = [m.to[0] for m in mail.outbox]
    assert len(recipients) == len(set(recipients)) == 5
    assert Customer.objects.get(pk=claimed.customer_id).email not in recipients
    assert IncidentNotice.objects.filter(status="sent").count() == 11


def test_a_customer_sees_only_their_own_notices(client, privacy_admin):
    incident = make_incident(privacy_admin)
    mine = make_account(email="me@example.com")
    other = make_customer(email="other@example.com")
    affected_select(
        actor=privacy_admin,
        incident=incident,
        scope="list",
        customer_ids=f"{mine.pk} {other.pk}",
    )
    notices_queue(actor=privacy_admin, incident=incident)
    notices_send_task.delay(str(incident.pk))
    client.post("/me/login/", {"email": "me@example.com", "password": PASSWORD})
    page = client.get("/me/notices/").content.decode()
    assert page.count("A misconfigured export") == 1
    assert IncidentNotice.objects.filter(customer_id=other.pk).exists()


def test_the_status_page_shows_only_what_was_published(client, privacy_admin):
    incident = make_incident(privacy_admin, kind="outage", title="Checkout is down")
    assert "Checkout is down" not in client.get("/status/").content.decode()
    status_publish(
        actor=privacy_admin,
        incident=incident,
        phase="investigating",
        message="Payments fail; your data is not at risk.",
        data_at_risk="no",
    )
    html = client.get("/status/").content.decode()
    assert "Checkout is down" in html
    assert "Payments fail" in html
    feed = client.get("/status.json").json()
    assert feed["updates"][0]["phase"] == "investigating"
    assert AuditEvent.objects.filter(action="status.published").exists()


def test_a_status_update_holding_personal_data_is_refused(client, privacy_admin):
    incident = make_incident(privacy_admin, kind="outage", title="Checkout is down")
    with pytest.raises(IncidentError) as refused:
        status_publish(
            actor=privacy_admin,
            incident=incident,
            phase="investigating",
            message="Mail jane.doe@example.com if your payment failed.",
            data_at_risk="unknown",
        )
    assert refused.value.field == "message"
    assert refused.value.code == "personal_data"
    assert "jane.doe" not in str(refused.value)
    assert "jane.doe" not in client.get("/status/").content.decode()
    assert not incident.status_updates.exists()


def test_customers_see_a_banner_while_an_incident_is_open(client, privacy_admin):
    make_account(email="me@example.com")
    incident = make_incident(privacy_admin, kind="outage", title="Slow pages")
    status_publish(
        actor=privacy_admin,
        incident=incident,
        phase="identified",
        message="Pages are slow.",
        data_at_risk="no",
    )
    client.post("/me/login/", {"email": "me@example.com", "password": PASSWORD})
    assert "Pages are slow." in client.get("/me/").content.decode()


def test_an_open_incident_shows_no_banner_until_an_update_is_published(
    client, privacy_admin
):
    make_account(email="me@example.com")
    incident = make_incident(privacy_admin, kind="outage", title="Slow pages")
    client.post("/me/login/", {"email": "me@example.com", "password": PASSWORD})
    assert 'class="warn banner"' not in client.get("/me/").content.decode()
    status_publish(
        actor=privacy_admin,
        incident=incident,
        phase="identified",
        message="Pages are slow.",
        data_at_risk="no",
    )
    assert 'class="warn banner"' in client.get("/me/").content.decode()


def test_a_queued_notice_is_not_one_we_say_we_sent(client, privacy_admin):
    incident = make_incident(privacy_admin)
    me = make_account(email="me@example.com")
    affected_select(
        actor=privacy_admin, incident=incident, scope="list", customer_ids=str(me.pk)
    )
    notices_queue(actor=privacy_admin, incident=incident)  # queued, not sent
    client.post("/me/login/", {"email": "me@example.com", "password": PASSWORD})
    page = client.get("/me/notices/").content.decode()
    assert "We have not sent you any notice about an incident." in page
    assert "none of our incidents involved your data" not in page


def test_status_times_name_the_configured_zone(client, privacy_admin, settings):
    settings.TIME_ZONE = "Asia/Jakarta"
    incident = make_incident(privacy_admin, kind="outage", title="Checkout is down")
    update = status_publish(
        actor=privacy_admin,
        incident=incident,
        phase="identified",
        message="Pages are slow.",
        data_at_risk="no",
    )
    local = timezone.localtime(update.published_at)
    html = client.get("/status/").content.decode()
    shown = formats.date_format(local, "DATETIME_FORMAT")
    assert f"{shown} (Asia/Jakarta)" in html
    assert " UTC" not in html


def test_the_status_form_says_the_title_is_public(client, privacy_admin):
    incident = make_incident(privacy_admin, kind="outage", title="Vendor mix-up")
    sign_in(client, privacy_admin)
    html = client.get(f"/compliance/incidents/{incident.pk}/").content.decode()
    assert 'for anyone to read, under this incident\'s title: "Vendor mix-up"' in html


def test_nothing_deletes_an_incident(compliance_officer, privacy_admin):
    incident = make_incident(privacy_admin)
    timeline_add(actor=privacy_admin, incident=incident, text="Export closed.")
    api = APIClient()
    api.force_authenticate(compliance_officer)
    assert api.delete(f"/api/v1/incidents/{incident.pk}/").status_code == 405
    with pytest.raises(ProtectedError):  # no page, API or admin deletes; rows refuse
        Incident.objects.filter(pk=incident.pk).delete()


@pytest.mark.parametrize(
    "role_fixture", ["support_agent", "delivery_agent", "customer_user"]
)
def test_only_governance_roles_use_the_incident_api(
    request, role_fixture, privacy_admin
):
    user = request.getfixturevalue(role_fixture)
    incident = make_incident(privacy_admin)
    api = APIClient()
    api.force_authenticate(user)
    assert api.get("/api/v1/incidents/").status_code == 403
    assert api.get(f"/api/v1/incidents/{incident.pk}/deadlines/").status_code == 403


def test_the_incident_api_for_compliance(compliance_officer, privacy_admin):
    api = APIClient()
    api.force_authenticate(compliance_officer)
    created = api.post(
        "/api/v1/incidents/",
        {
            "title": "Lost laptop",
            "kind": "suspected_breach",
            "severity": "medium",
            "detected_at": "2026-11-20T10:00:00Z",
            "aware_at": "2026-11-20T12:00:00Z",
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    incident_id = created.json()["id"]
    assert api.get(f"/api/v1/incidents/{incident_id}/deadlines/").json() == []
    assert api.get(f"/api/v1/incidents/{incident_id}/affected/").json()["total"] == 0
    assert (
        api.get(f"/api/v1/incidents/{incident_id}/notifications/").json()["total"] == 0
    )
    bad = api.post(
        f"/api/v1/incidents/{incident_id}/status/", {"status": "nope"}, format="json"
    )
    assert bad.status_code == 400
    assert "status" in error_fields(bad)
