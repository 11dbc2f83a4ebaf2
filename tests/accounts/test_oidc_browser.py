"""One staff member signing in with their company account in headless Chromium,
through a real OpenID provider (oidc-provider-mock)."""

import pytest

from apps.accounts.models import Role, User
from apps.accounts.oidc import provider_forget
from tests.accounts.oidc_provider import Provider, configure, provider_running

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_staff_sign_in_with_the_company_account(live_server, browser, settings):
    with provider_running() as issuer:
        configure(settings, issuer)
        Provider(issuer).set_user(
            "emp-b1", groups=["amanah-compliance"], amr=["pwd", "hwk"]
        )
        page = browser.new_page()
        # The provider's page styles itself from a CDN: nothing leaves the machine.
        page.route("https://cdn.jsdelivr.net/**", lambda route: route.abort())
        page.goto(f"{live_server.url}/compliance/")
        page.get_by_role("link", name="Sign in with your company account").click()

        page.get_by_role("heading", name="Authorize Client").wait_for()
        page.get_by_placeholder("sub").fill("emp-b1")
        page.get_by_role("button", name="Authorize").click()

        # Back at Amanah, on the page asked for: the provider's MFA counted.
        page.wait_for_url(f"{live_server.url}/compliance/")
        assert page.get_by_role("button", name="Sign out").first.is_visible()
        page.close()
    provider_forget()
    user = User.objects.get(oidc_identity__subject="emp-b1")
    assert user.role == Role.COMPLIANCE_OFFICER
