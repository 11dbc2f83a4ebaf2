"""A compliance officer in headless Chromium records the authority's notification on
the incident page, and the deadline shows met."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from apps.incidents.models import DeadlineNotification
from tests.accounts.helpers import sign_in
from tests.incidents.factories import affect, deadline_rules_seed, make_incident

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_officer_records_the_authority_notification_and_the_deadline_is_met(
    live_server, browser, compliance_officer
):
    deadline_rules_seed()
    aware = timezone.now() - timedelta(hours=30)
    incident = make_incident(
        compliance_officer, aware_at=aware, detected_at=aware, occurred_at=aware
    )
    affect(incident, {("DE", ""): 10})
    client = Client()
    sign_in(client, compliance_officer)
    context = browser.new_context()
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    page.goto(f"{live_server.url}/compliance/incidents/{incident.pk}/")
    row = page.locator('tr[data-rule="eu-gdpr-authority"]')
    assert "left" in row.locator("td[data-status]").inner_text()
    assert "hours left" in page.locator('[data-summary="nearest"]').inner_text()

    form = page.get_by_role("form", name="Record notification eu-gdpr-authority")
    page.get_by_text("Record notification: supervisory authority, EU GDPR").click()
    form.get_by_label("Whom").fill("Berliner Beauftragte für Datenschutz")
    when = timezone.localtime(timezone.now() - timedelta(hours=1))
    form.get_by_label("When").fill(f"{when:%Y-%m-%dT%H:%M}")
    form.get_by_label("Their reference or ours").fill("BlnBDI-117")
    form.get_by_role("button", name="Record notification").click()

    page.get_by_text("Notification recorded").wait_for()
    status = page.locator('tr[data-rule="eu-gdpr-authority"] td[data-status]')
    assert status.get_attribute("data-status") == "met"
    assert "met" in status.inner_text()
    assert "Berliner Beauftragte für Datenschutz" in status.inner_text()
    assert DeadlineNotification.objects.get().reference == "BlnBDI-117"
    context.close()


def _page(browser, live_server, user, width):
    client = Client()
    sign_in(client, user)
    context = browser.new_context(viewport={"width": width, "height": 900})
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    return context, context.new_page()


def test_the_summary_reads_at_a_glance_and_fits_a_phone(
    live_server, browser, compliance_officer
):
    deadline_rules_seed()
    incident = make_incident(compliance_officer)
    affect(
        incident,
        {
            ("DE", ""): 10,
            ("GB", ""): 10,
            ("ID", "ID-JK"): 10,
            ("SG", ""): 600,
            ("US", "US-CA"): 600,
            ("US", "US-TX"): 300,
        },
    )
    url = f"{live_server.url}/compliance/incidents/{incident.pk}/"

    context, page = _page(browser, live_server, compliance_officer, 1280)
    page.goto(url)
    chips = page.locator("dl.summary .chips .badge")
    assert chips.count() >= 6
    columns = {round(chips.nth(i).bounding_box()["x"]) for i in range(chips.count())}
    assert len(columns) >= 3, columns  # side by side, not one column
    # Risk, the next deadline, the affected and the notices share the first row.
    tops = {
        round(page.locator("dl.summary dt", has_text=name).bounding_box()["y"])
        for name in ("Risk", "Next deadline", "Affected", "Notices")
    }
    assert len(tops) == 1, tops
    context.close()

    context, page = _page(browser, live_server, compliance_officer, 390)
    page.goto(url)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    last = page.locator("dl.summary .chips .badge").last.bounding_box()
    assert last["x"] + last["width"] <= 390
    context.close()


def test_a_refused_notification_opens_where_its_form_is(
    live_server, browser, compliance_officer
):
    deadline_rules_seed()
    incident = make_incident(compliance_officer)
    affect(incident, {("DE", ""): 10})
    context, page = _page(browser, live_server, compliance_officer, 1280)
    page.goto(f"{live_server.url}/compliance/incidents/{incident.pk}/")
    page.get_by_text("Record notification: supervisory authority, EU GDPR").click()
    form = page.get_by_role("form", name="Record notification eu-gdpr-authority")
    form.get_by_role("button", name="Record notification").click()  # nothing filled

    page.wait_for_url("**#notify-eu-gdpr-authority")
    error = form.locator(".field-error").first
    assert error.is_visible()
    assert error.bounding_box()["y"] < 900  # on screen: the page jumped to it
    assert page.evaluate("window.scrollY") > 0
    context.close()
