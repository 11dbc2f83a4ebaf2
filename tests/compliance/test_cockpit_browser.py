"""A compliance officer in headless Chromium, on a phone-sized screen, signs in and
sees on /compliance/ the nearest deadline of a breach, with the time left."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import Role
from tests.accounts.factories import PASSWORD, UserFactory
from tests.accounts.helpers import current_code
from tests.incidents.factories import affect, deadline_rules_seed, make_incident

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_officer_sees_the_nearest_breach_deadline(live_server, browser):
    officer = UserFactory(username="officer", role=Role.COMPLIANCE_OFFICER)
    device = TOTPDevice.objects.create(
        user=officer, name="authenticator", confirmed=True
    )
    deadline_rules_seed()
    aware = timezone.now() - timedelta(hours=60)
    incident = make_incident(
        officer,
        title="Vendor saw contact details",
        occurred_at=aware - timedelta(hours=2),
        detected_at=aware - timedelta(hours=1),
        aware_at=aware,
    )
    affect(incident, {("DE", ""): 10})  # GDPR: the authority within 72 hours

    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(f"{live_server.url}/staff/")
    page.get_by_label("Username").fill("officer")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="One more step").wait_for()
    page.get_by_label("Code").fill(current_code(device))
    page.get_by_role("button", name="Continue").click()

    page.goto(f"{live_server.url}/compliance/")
    nearest = page.locator("#nearest-deadline")
    nearest.wait_for()
    text = nearest.inner_text()
    assert "Vendor saw contact details" in text
    assert "Supervisory authority (EU GDPR)" in text
    # 72 hours from awareness 60 hours ago: about 12 hours left.
    assert re.search(r"1[12]\s+hours(, \d+\s+minutes)? left", text), text
    # Action is due: the incidents panel is the red one, the page not all clear.
    assert "urgent" in page.locator("#tile-incidents").get_attribute("class")
    assert page.locator("#all-clear").count() == 0
    # Readable at 390 px: nothing wider than the screen.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    # The incident is linked once in its panel.
    tile = page.locator("#tile-incidents")
    assert tile.get_by_role("link", name="Vendor saw contact details").count() == 1
    # "Action due" sits beside its panel's heading, not under it, on a phone and on
    # a laptop (the audit chain, never verified here, is due too).
    for screen in (390, 1280):
        page.set_viewport_size({"width": screen, "height": 900})
        badges = page.locator(".cockpit h2 .badge").all()
        assert len(badges) >= 2
        for badge in badges:
            link = badge.locator("xpath=../a").bounding_box()
            box = badge.bounding_box()
            assert box["x"] > link["x"] + link["width"] - 1, (screen, box, link)
            assert box["y"] < link["y"] + link["height"], (screen, box, link)
    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("link", name="Vendor saw contact details").first.click()
    page.wait_for_url(f"**/incidents/{incident.pk}/")
    page.close()
