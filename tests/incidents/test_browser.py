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
