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


def test_staff_make_a_named_token_use_it_and_revoke_it(live_server, browser):
    """The security page, as an integrator's admin uses it: a read-only token for a
    CRM, its key shown once, working for reads only, dead once revoked."""
    import httpx

    from apps.accounts.models import Role

    UserFactory(username="crm-owner", role=Role.PRIVACY_ADMIN)
    page = browser.new_page()
    page.goto(f"{live_server.url}/staff/")
    page.get_by_label("Username").fill("crm-owner")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Set up two-step sign-in").wait_for()
    secret = page.locator("code.secret").inner_text()
    page.get_by_label("Code").fill(_code_for(secret))
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("link", name="I have saved them").click()

    page.goto(f"{live_server.url}/accounts/security/")
    page.get_by_label("Name").fill("CRM sync")
    page.get_by_label("Read what the role may see").check()
    page.get_by_role("button", name="Make token").click()
    page.get_by_role("heading", name="Your new API token").wait_for()
    key = page.locator("code.secret").inner_text()
    assert key.startswith("amk_")
    assert page.get_by_text("it will not be shown again").is_visible()

    bearer = {"Authorization": f"Bearer {key}"}
    api = f"{live_server.url}/api/v1/customers/"
    assert httpx.get(api, headers=bearer).status_code == 200
    refused = httpx.post(api, headers=bearer, json={"country": "ID"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "scope"

    page.get_by_role("link", name="I have saved it").click()
    row = page.get_by_role("row", name="CRM sync")
    assert key[:8] in row.inner_text()
    assert key not in page.content()  # listed by its first characters only
    row.get_by_role("button", name="Revoke").click()
    page.get_by_role("heading", name="Sign-in and security").wait_for()
    assert page.get_by_role("row", name="CRM sync").count() == 0
    assert httpx.get(api, headers=bearer).status_code == 401
    page.close()
