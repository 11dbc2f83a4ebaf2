"""The draft report to an authority (GDPR art. 33(3), UU PDP art. 46(2)), prefilled
from the incident, editable until marked sent; the affected snapshot without the
erased; the status update with no default about the data at risk."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.incidents.models import AuthorityReport, DeadlineNotification, StatusUpdate
from apps.incidents.selectors import (
    affected_counts,
    affected_erased_counts,
    deadlines_for,
)
from apps.incidents.services import affected_select, deadline_notified_record
from apps.retention.services import customer_erase
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer
from tests.incidents.factories import affect, make_incident

pytestmark = pytest.mark.django_db


def report_url(incident, rule="eu-gdpr-authority"):
    return reverse("incidents:report", args=[incident.pk, rule])


def eu_incident(actor):
    incident = make_incident(
        actor,
        systems=["support tool"],
        risk_reasoning="Contact details in plain text at a vendor.",
    )
    affect(incident, {("DE", ""): 7, ("FR", ""): 5, ("ID", "ID-JK"): 3})
    return incident


def test_the_gdpr_draft_is_prefilled_from_the_incident(client, compliance_officer):
    incident = eu_incident(compliance_officer)
    sign_in(client, compliance_officer)

    html = client.get(report_url(incident)).content.decode()

    assert "GDPR art. 33(3)" in html
    assert "(b) The name and contact details of the data protection officer" in html
    assert "About 12 people in EU (15 in all, in 3 countries: DE, FR, ID)" in html
    assert "Contact details, Identity" in html or "Identity" in html
    assert "support tool" in html
    assert "Contact details in plain text at a vendor." in html
    assert "privacy@amanah.example" in html
    assert "We closed the export" in html
    assert "@media print" not in html  # the print rules are in the stylesheet
    assert "css/incidents.css" in html


def test_the_uu_pdp_report_has_its_own_headings(client, compliance_officer):
    incident = eu_incident(compliance_officer)
    sign_in(client, compliance_officer)
    html = client.get(report_url(incident, "id-uupdp-authority")).content.decode()
    assert "UU No. 27/2022 (PDP) art. 46(2)" in html
    assert "(a) The personal data disclosed" in html
    assert "(c) The efforts to handle and recover" in html


def test_only_authority_deadlines_of_the_incident_have_a_report(
    client, compliance_officer, support_agent
):
    incident = eu_incident(compliance_officer)
    sign_in(client, compliance_officer)
    assert client.get(report_url(incident, "eu-gdpr-individuals")).status_code == 404
    assert client.get(report_url(incident, "sg-pdpa-authority")).status_code == 404
    sign_in(client, support_agent)
    assert client.get(report_url(incident)).status_code == 403


def test_the_report_is_edited_then_marked_sent_and_frozen(client, compliance_officer):
    incident = eu_incident(compliance_officer)
    sign_in(client, compliance_officer)
    url = report_url(incident)
    sections = {
        "nature": "A vendor saw a support export.",
        "contact": "DPO, privacy@amanah.example",
        "consequences": "Phishing.",
        "measures": "Export closed.",
        "delay": "",
    }
    assert client.post(url, {**sections, "action": "save"}).status_code == 302
    report = AuthorityReport.objects.get()
    assert report.sections["nature"] == "A vendor saw a support export."
    assert "A vendor saw a support export." in client.get(url).content.decode()

    when = timezone.localtime(timezone.now() - timedelta(minutes=5))
    response = client.post(
        url,
        {
            **sections,
            "nature": "A vendor saw a support export (final).",
            "action": "send",
            "recipient": "BfDI",
            "notified_at": f"{when:%Y-%m-%dT%H:%M}",
            "reference": "BfDI-42",
        },
    )
    assert response.status_code == 302
    report.refresh_from_db()
    assert report.sent_at is not None
    notification = DeadlineNotification.objects.get()
    assert report.notification == notification
    assert notification.reference.startswith(f"BfDI-42 · Amanah report {report.pk}")
    gdpr = next(
        d
        for d in deadlines_for(incident=incident)
        if d.rule_code == "eu-gdpr-authority"
    )
    assert gdpr.status == "met"
    assert set(
        AuditEvent.objects.filter(action__startswith="incident.report").values_list(
            "action", flat=True
        )
    ) == {"incident.report_saved", "incident.report_sent"}

    html = client.get(url).content.decode()
    assert 'data-report="sent"' in html
    assert "<textarea" not in html
    again = client.post(url, {**sections, "nature": "Changed.", "action": "save"})
    assert again.status_code == 400
    assert "The report was sent: it cannot change." in again.content.decode()
    report.refresh_from_db()
    assert report.sections["nature"] == "A vendor saw a support export (final)."


def test_marking_sent_with_a_time_in_the_future_is_refused(client, compliance_officer):
    incident = eu_incident(compliance_officer)
    sign_in(client, compliance_officer)
    when = timezone.localtime(timezone.now() + timedelta(days=1))
    response = client.post(
        report_url(incident),
        {
            "nature": "x",
            "action": "send",
            "recipient": "BfDI",
            "notified_at": f"{when:%Y-%m-%dT%H:%M}",
        },
    )
    assert response.status_code == 400
    assert "It cannot be in the future." in response.content.decode()
    assert not DeadlineNotification.objects.exists()
    # Refused as a whole: the text was not saved (nor audited) either.
    assert not AuthorityReport.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="incident.report")


def test_marking_sent_once_notified_changes_nothing(client, compliance_officer):
    incident = eu_incident(compliance_officer)
    sign_in(client, compliance_officer)
    url = report_url(incident)
    assert client.post(url, {"nature": "Draft.", "action": "save"}).status_code == 302
    deadline_notified_record(
        actor=compliance_officer,
        incident=incident,
        rule_code="eu-gdpr-authority",
        audience="authority",
        notified_at=timezone.now() - timedelta(hours=1),
        recipient="BfDI",
    )
    when = timezone.localtime(timezone.now() - timedelta(minutes=5))
    response = client.post(
        url,
        {
            "nature": "Final.",
            "action": "send",
            "recipient": "BfDI",
            "notified_at": f"{when:%Y-%m-%dT%H:%M}",
        },
    )

    assert response.status_code == 400
    assert "already recorded" in response.content.decode()
    report = AuthorityReport.objects.get()
    assert (report.sections["nature"], report.sent_at) == ("Draft.", None)
    assert AuditEvent.objects.filter(action="incident.report_saved").count() == 1


# The affected snapshot and the erased ------------------------------------------------


@pytest.mark.parametrize(
    ("erased_before", "owed"), [(1, True), (2, False)], ids=["250", "249"]
)
def test_erasures_since_the_incident_count_and_erasures_before_it_do_not(
    privacy_admin, erased_before, owed
):
    """Texas's attorney general is owed from 250 residents. People erased since the
    incident were affected (their data was exposed): they keep the count at 250.
    Those erased before it were not: one more of them and it is 249."""
    texans = [make_customer(country="US", region="US-TX") for _ in range(5)]
    for gone in texans[:erased_before]:
        customer_erase(actor=privacy_admin, customer=gone)
    now = timezone.now()
    incident = make_incident(
        privacy_admin, occurred_at=now, detected_at=now, aware_at=now
    )
    customer_erase(actor=privacy_admin, customer=texans[2])  # before the snapshot
    affected = affected_select(
        actor=privacy_admin,
        incident=incident,
        scope="list",
        customer_ids=" ".join(str(c.pk) for c in texans),
    )
    affect(incident, {("US", "US-TX"): 246})
    customer_erase(actor=privacy_admin, customer=texans[3])  # after the snapshot

    expected = 251 - erased_before
    assert affected == 5 - erased_before
    assert sum(affected_counts(incident=incident).values()) == expected
    deadlines = {d.rule_code: d for d in deadlines_for(incident=incident)}
    assert ("us-tx-attorney-general" in deadlines) is owed
    if owed:
        assert deadlines["us-tx-attorney-general"].affected == 250
    assert affected_erased_counts(incident=incident) == {
        "before_incident": erased_before,
        "since_incident": 2,
    }
    api = APIClient()
    api.force_authenticate(privacy_admin)
    answer = api.get(f"/api/v1/incidents/{incident.pk}/affected/").json()
    assert answer["total"] == expected
    assert (answer["erased_before_incident"], answer["erased_since_incident"]) == (
        erased_before,
        2,
    )


def test_an_unknown_occurrence_cuts_off_at_detection(privacy_admin):
    gone = make_customer(country="US", region="US-TX")
    customer_erase(actor=privacy_admin, customer=gone)
    now = timezone.now()
    incident = make_incident(
        privacy_admin, occurred_at=None, detected_at=now, aware_at=now
    )
    affected_select(
        actor=privacy_admin, incident=incident, scope="list", customer_ids=str(gone.pk)
    )
    assert affected_counts(incident=incident) == {}
    assert affected_erased_counts(incident=incident)["before_incident"] == 1


def test_the_report_counts_the_erased_since_among_the_people(
    client, compliance_officer, privacy_admin
):
    gone_before = make_customer(country="DE", region="")
    customer_erase(actor=privacy_admin, customer=gone_before)
    now = timezone.now()
    incident = make_incident(
        compliance_officer, occurred_at=now, detected_at=now, aware_at=now
    )
    gone_since = make_customer(country="DE", region="")
    make_customer(country="DE", region="")
    affected_select(actor=privacy_admin, incident=incident, scope="all")
    customer_erase(actor=privacy_admin, customer=gone_since)
    sign_in(client, compliance_officer)
    html = client.get(report_url(incident)).content.decode()
    assert "About 2 people in EU (2 in all, in 1 country: DE)." in html
    assert "Of these, 1 customers whose data was held" in html
    assert "1 customers the selection matched were erased before it" in html


def test_the_page_shows_the_erased_apart(client, privacy_admin):
    erased = make_customer(country="ID")
    customer_erase(actor=privacy_admin, customer=erased)
    now = timezone.now()
    incident = make_incident(
        privacy_admin, occurred_at=now, detected_at=now, aware_at=now
    )
    make_customer(country="ID")
    since = make_customer(country="ID")
    affected_select(actor=privacy_admin, incident=incident, scope="all")
    customer_erase(actor=privacy_admin, customer=since)
    sign_in(client, privacy_admin)
    html = client.get(reverse("incidents:detail", args=[incident.pk])).content.decode()
    assert "Affected customers: 2" in html
    assert "Not counted: 1 erased before the incident occurred" in html
    assert "· 1 erased since the incident (counted; no further notice)" in html
    assert "Erased since the incident: 1 (counted; no further notice)." in html


# The status update -------------------------------------------------------------------


def test_the_status_form_has_no_answer_about_the_data_until_one_is_chosen(
    client, compliance_officer
):
    incident = make_incident(compliance_officer, kind="suspected_breach")
    sign_in(client, compliance_officer)
    url = reverse("incidents:detail", args=[incident.pk])
    html = client.get(url).content.decode()
    assert '<option value="" selected>Choose what to tell people' in html
    assert '<option value="no" selected' not in html

    response = client.post(
        url,
        {
            "action": "status",
            "phase": "investigating",
            "message": "We are looking into what happened to the support export.",
        },
    )

    assert response.status_code == 400
    assert not StatusUpdate.objects.exists()
    assert "Your data is not at risk" not in client.get("/status/").content.decode()
    response = client.post(
        url,
        {
            "action": "status",
            "phase": "investigating",
            "message": "We are looking into what happened to the support export.",
            "data_at_risk": "unknown",
        },
    )
    assert response.status_code == 302
    assert StatusUpdate.objects.get().data_at_risk == "unknown"


def test_the_report_prints_on_a4_without_the_menus():
    from pathlib import Path

    from django.contrib.staticfiles import finders

    css = Path(finders.find("css/incidents.css")).read_text()
    printed = css[css.index("@media print") :]
    assert "size: A4" in printed
    assert ".topbar, .footer" in printed
    assert ".no-print" in printed


# What the report says it is ----------------------------------------------------------


def test_a_deadline_notified_by_hand_offers_no_mark_sent(client, compliance_officer):
    incident = eu_incident(compliance_officer)
    deadline_notified_record(
        actor=compliance_officer,
        incident=incident,
        rule_code="eu-gdpr-authority",
        audience="authority",
        notified_at=timezone.now() - timedelta(hours=1),
        recipient="BfDI",
        reference="BfDI-77",
    )
    sign_in(client, compliance_officer)
    url = report_url(incident)

    html = client.get(url).content.decode()

    notice = html[html.index('data-report="notified"') :]
    notice = notice[: notice.index("</p>")]
    when = timezone.localtime(timezone.now() - timedelta(hours=1))
    assert "already recorded" in notice
    assert f"{when:%Y-%m-%d %H:%M}" in notice
    assert "to BfDI, reference BfDI-77" in notice
    assert 'value="send"' not in html
    assert "Mark sent" not in html
    assert "Save the text (a follow-up record)" in html
    assert "Draft — not sent" in html  # this text was never sent
    # Kept as a follow-up record: saving still works.
    assert (
        client.post(url, {"nature": "Follow-up.", "action": "save"}).status_code == 302
    )
    assert AuthorityReport.objects.get().sections["nature"] == "Follow-up."


def test_the_draft_says_so_when_it_was_prepared_and_by_whom(
    client, compliance_officer, settings
):
    incident = eu_incident(compliance_officer)
    sign_in(client, compliance_officer)
    url = report_url(incident)
    today = f"{timezone.localdate():%Y-%m-%d}"

    html = client.get(url).content.decode()
    # Printed as well: the mark is in no "no-print" block.
    assert '<p class="report-mark" data-report="draft">Draft — not sent</p>' in html
    assert f"Prepared on {today}" in html
    assert "Sent on" not in html
    assert '<strong data-report="controller">the controller</strong>' in html
    assert "set AMANAH_CONTROLLER_NAME" in html
    assert (
        "data protection officer or other contact point, as named on the incident: "
        '<span data-report="contact">privacy@amanah.example, +62 21 5091 0000</span>'
    ) in html

    settings.AMANAH_CONTROLLER_NAME = "PT Toko Amanah"
    html = client.get(url).content.decode()
    assert '<strong data-report="controller">PT Toko Amanah</strong>' in html
    assert "set AMANAH_CONTROLLER_NAME" not in html
    # The drafted contact section names the controller and its contact point.
    assert "PT Toko Amanah. Data protection officer or other contact point: " in html

    when = timezone.localtime(timezone.now() - timedelta(minutes=5))
    sent = client.post(
        url,
        {
            "nature": "Final.",
            "action": "send",
            "recipient": "BfDI",
            "notified_at": f"{when:%Y-%m-%dT%H:%M}",
        },
    )
    assert sent.status_code == 302
    html = client.get(url).content.decode()
    assert "Draft — not sent" not in html
    assert f"Sent on {when:%Y-%m-%d %H:%M}" in html
    assert f"Prepared on {today}" in html


def test_the_draft_mark_is_printed():
    from pathlib import Path

    from django.contrib.staticfiles import finders

    css = Path(finders.find("css/incidents.css")).read_text()
    printed = css[css.index("@media print") :]
    hidden = printed[: printed.index("}")]
    assert "report-mark" not in hidden
    assert ".report-mark {" in css
