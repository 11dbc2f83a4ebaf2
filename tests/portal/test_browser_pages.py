"""Issue 21 in a real headless Chromium: on a phone the confirmation of a switched
consent is on screen, My data's form shows the correction's fields only for a
correction, and a Persian page lays out right to left."""

import pytest

from tests.consent.factories import reseed_purposes
from tests.portal.factories import PASSWORD, make_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def signed_in_page(browser, live_server, viewport=PHONE):
    page = browser.new_page(viewport=viewport)
    page.goto(f"{live_server.url}/me/login/")
    page.get_by_label("Email address").fill("siti@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/me/")
    return page


def test_on_a_phone_the_switch_confirmation_is_on_screen(live_server, browser):
    reseed_purposes()
    make_account()
    page = signed_in_page(browser, live_server)
    # The last switch on the page: far below the top on a phone.
    switch = page.get_by_role("switch").last
    name = switch.get_attribute("aria-label").split(":")[0]
    switch.scroll_into_view_if_needed()
    switch.click()
    confirmation = page.get_by_text(f"{name} is now on.")
    confirmation.wait_for()
    box = confirmation.bounding_box()
    assert box is not None
    assert box["y"] >= 0
    assert box["y"] + box["height"] <= PHONE["height"]
    # Shown once, next to the switch, not also at the top of the page.
    assert page.locator(".messages .message").count() == 0
    page.close()


def test_the_correction_fields_show_only_for_a_correction(live_server, browser):
    reseed_purposes()
    make_account()
    page = signed_in_page(browser, live_server)
    page.goto(f"{live_server.url}/me/data/")
    kind = page.get_by_label("What would you like?")
    kind.select_option("access")
    assert not page.get_by_label("The correct value").is_visible()
    assert not page.get_by_label("For an objection: what you object to").is_visible()
    kind.select_option("rectification")
    assert page.get_by_label("The correct value").is_visible()
    assert page.get_by_label("For a correction: which detail").is_visible()
    kind.select_option("objection")
    assert not page.get_by_label("The correct value").is_visible()
    assert page.get_by_label("For an objection: what you object to").is_visible()
    page.close()


def test_persian_pages_lay_out_right_to_left(live_server, browser, tmp_path):
    reseed_purposes()
    make_account()
    page = signed_in_page(browser, live_server, viewport={"width": 1280, "height": 900})
    page.get_by_role("button", name="فارسی").click()
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("dir") == "rtl"
    width = page.viewport_size["width"]
    brand = page.locator(".brand").bounding_box()
    assert brand["x"] > width / 2  # the start of the bar is on the right
    # A switch sits at the inline end of its purpose: the left.
    switch = page.get_by_role("switch").first.bounding_box()
    text = page.locator(".purpose-text").first.bounding_box()
    assert switch["x"] < text["x"]
    # No sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(tmp_path / "consents-fa.png"), full_page=True)
    page.close()
