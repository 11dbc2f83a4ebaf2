"""Issue 21 on a phone (390 px) in a real headless Chromium: My data's answer to a
request is on screen where the page lands, a refused request opens at its errors, the
requests reflow as cards so the download is reachable, and the public data policy
reflows as cards in every language (Persian right to left): no sideways scroll."""

import pytest

from tests.consent.factories import reseed_purposes
from tests.portal.factories import make_account
from tests.portal.test_browser_pages import PHONE, signed_in_page
from tests.retention.factories import reseed_policies

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def on_screen(page, locator) -> None:
    """Entirely within the phone's viewport, nothing cut off at either side."""
    box = locator.bounding_box()
    assert box is not None
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= PHONE["width"], box
    assert box["y"] >= 0, box
    assert box["y"] + box["height"] <= PHONE["height"], box


def no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_a_copy_of_my_data_says_it_is_done_on_screen_and_can_be_downloaded(
    live_server, browser
):
    reseed_purposes()
    make_account()
    page = signed_in_page(browser, live_server)
    page.goto(f"{live_server.url}/me/data/")
    page.get_by_label("What would you like?").select_option("access")
    page.get_by_role("button", name="Send my request").click()
    page.wait_for_url("**/me/data/#request-message")
    on_screen(page, page.get_by_text("Your request is done: download your data below."))
    no_sideways_scroll(page)
    download = page.get_by_role("link", name="Download my data")
    download.scroll_into_view_if_needed()
    on_screen(page, download)
    page.close()


def test_a_correction_request_is_confirmed_on_screen(live_server, browser):
    reseed_purposes()
    make_account()
    page = signed_in_page(browser, live_server)
    page.goto(f"{live_server.url}/me/data/")
    page.get_by_label("What would you like?").select_option("rectification")
    page.get_by_label("For a correction: which detail").select_option("email")
    page.get_by_label("The correct value").fill("siti.new@example.com")
    page.get_by_role("button", name="Send my request").click()
    page.wait_for_url("**/me/data/#request-message")
    on_screen(page, page.locator("#request-message"))
    no_sideways_scroll(page)
    page.close()


def test_a_refused_correction_opens_at_its_error(live_server, browser):
    reseed_purposes()
    make_account()
    page = signed_in_page(browser, live_server)
    page.goto(f"{live_server.url}/me/data/")
    page.get_by_label("What would you like?").select_option("rectification")
    page.get_by_label("For a correction: which detail").select_option("email")
    page.get_by_role("button", name="Send my request").click()
    page.wait_for_url("**/me/data/#request-form")
    page.locator("#request-errors").wait_for()
    on_screen(page, page.locator("#request-errors"))
    no_sideways_scroll(page)
    # Its link leads to the field.
    page.locator("#request-errors a").first.click()
    on_screen(page, page.get_by_label("The correct value"))
    page.close()


@pytest.mark.parametrize("language", ["en", "id", "de", "fa"])
def test_the_data_policy_reflows_as_cards_on_a_phone(live_server, browser, language):
    reseed_purposes()
    reseed_policies()
    page = browser.new_page(viewport=PHONE, locale=language)
    page.goto(f"{live_server.url}/privacy/")
    assert page.locator("html").get_attribute("lang") == language
    no_sideways_scroll(page)
    rows = page.locator("table.cards tbody tr")
    assert rows.count() > 0
    # Every value of a row, its "why" too, is within the screen and of a readable
    # width (not a tall narrow column).
    for cell in rows.first.locator("td").all():
        cell.scroll_into_view_if_needed()
        box = cell.bounding_box()
        assert box["x"] >= 0, box
        assert box["x"] + box["width"] <= PHONE["width"], box
        assert box["width"] >= PHONE["width"] / 2, box
    page.close()
