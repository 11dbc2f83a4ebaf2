"""The /webhooks/ form in headless Chromium: the Events box overlaps no other field
(W7)."""

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import Role
from tests.accounts.factories import PASSWORD, UserFactory
from tests.accounts.helpers import current_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


@pytest.mark.parametrize("width", [1280, 390])
def test_the_events_box_overlaps_no_field(live_server, browser, width):
    admin = UserFactory(username="padmin", role=Role.PRIVACY_ADMIN)
    device = TOTPDevice.objects.create(user=admin, name="authenticator", confirmed=True)
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(f"{live_server.url}/staff/")
    page.get_by_label("Username").fill("padmin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="One more step").wait_for()
    page.get_by_label("Code").fill(current_code(device))
    page.get_by_role("button", name="Continue").click()
    page.goto(f"{live_server.url}/webhooks/")
    events = page.locator("fieldset").filter(has_text="Events").bounding_box()
    for label in ("URL (https://)", "Description"):
        field = page.get_by_label(label).bounding_box()
        assert not overlap(events, field), (label, events, field)
