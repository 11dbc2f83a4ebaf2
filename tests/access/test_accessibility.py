"""The staff pages a shift lives on, in headless Chromium at a laptop's width and a
phone's: the desk (a support agent's and a delivery agent's), the agent's customer
page, the compliance cockpit and the retention report. axe-core finds no serious or
critical violation; a full-page screenshot of each lands in
screenshots/staff/<width>/<page>.png. Then a staff member signs in, second step
included, with the keyboard alone."""

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import Role
from tests.a11y import WIDTHS, check_page, report, tab_to, without_focus_ring
from tests.access.factories import assign
from tests.accounts.factories import PASSWORD, UserFactory
from tests.accounts.helpers import current_code
from tests.consent.factories import reseed_purposes
from tests.customers.factories import make_customer
from tests.incidents.factories import deadline_rules_seed, make_incident

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _signed_in(browser, live_server, user):
    """A browser context signed in as `user`, through both steps."""
    device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live_server.url}/staff/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="One more step").wait_for()
    page.get_by_label("Code").fill(current_code(device))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{live_server.url}/staff/")
    return context, page


def test_the_staff_pages_pass_axe_at_both_widths(live_server, browser):
    reseed_purposes()
    deadline_rules_seed()
    agent = UserFactory(username="support", role=Role.SUPPORT_AGENT)
    officer = UserFactory(username="compliance", role=Role.COMPLIANCE_OFFICER)
    customer = make_customer(email="jane@example.com", phone="+62 812-3456-7890")
    assign(agent, customer)
    driver = UserFactory(username="delivery", role=Role.DELIVERY_AGENT)
    assign(driver, customer)
    make_incident(officer, title="Vendor saw contact details")
    violations: list[tuple[str, str, str]] = []

    def visit(page, name: str, path: str) -> None:
        page.goto(live_server.url + path)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            label = f"{name} [staff, {width}px]"
            violations.extend(check_page(page, label, "staff", str(width), name))

    context, page = _signed_in(browser, live_server, agent)
    visit(page, "desk", "/staff/")
    visit(page, "customer", f"/staff/customers/{customer.pk}/")
    context.close()

    context, page = _signed_in(browser, live_server, driver)
    visit(page, "desk-delivery", "/staff/")
    context.close()

    context, page = _signed_in(browser, live_server, officer)
    visit(page, "cockpit", "/compliance/")
    visit(page, "retention-report", "/compliance/retention/")
    context.close()
    assert not violations, report(violations)


def test_staff_sign_in_with_the_keyboard_alone_second_step_included(
    live_server, browser
):
    agent = UserFactory(username="keyboard-agent", role=Role.SUPPORT_AGENT)
    device = TOTPDevice.objects.create(user=agent, name="authenticator", confirmed=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/staff/")

    passed = tab_to(page, "el.name === 'username'")
    page.keyboard.type("keyboard-agent")
    passed += tab_to(page, "el.type === 'password'")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="One more step").wait_for()

    passed += tab_to(page, "el.name === 'otp_token'")
    page.keyboard.type(current_code(device))
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Staff desk").wait_for()
    assert passed
    assert not without_focus_ring(passed), without_focus_ring(passed)
    page.close()
