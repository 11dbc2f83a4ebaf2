"""A new staff member in headless Chromium: password, authenticator setup, desk."""

from base64 import b32decode

import pytest
from django_otp.oath import TOTP

from tests.accounts.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _code_for(secret: str) -> str:
    """What an authenticator app shows for the key typed from the setup page."""
    return f"{TOTP(b32decode(secret.replace(' ', ''))).token():06d}"


def test_staff_set_up_two_step_sign_in_then_sign_in_with_a_code(live_server, browser):
    UserFactory(username="new-agent")
    page = browser.new_page()
    page.goto(f"{live_server.url}/staff/")
    page.get_by_label("Username").fill("new-agent")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.get_by_role("heading", name="Set up two-step sign-in").wait_for()
    assert page.locator(".qr svg").is_visible()
    secret = page.locator("code.secret").inner_text()
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Confirm").click()
    page.get_by_text("That code is not right").wait_for()

    page.get_by_label("Code").fill(_code_for(secret))
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("heading", name="Your recovery codes").wait_for()
    codes = page.locator("ul.codes code").all_inner_texts()
    assert len(codes) == 10
    page.get_by_role("link", name="I have saved them").click()
    page.get_by_role("heading", name="Staff desk").wait_for()

    page.get_by_role("button", name="Sign out").first.click()
    page.goto(f"{live_server.url}/staff/")
    page.get_by_label("Username").fill("new-agent")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="One more step").wait_for()
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name="Staff desk").wait_for()
    page.close()
