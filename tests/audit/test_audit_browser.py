"""The audit trail on a phone (390 px) in a real headless Chromium: each event is a
card, its action, actor and details readable, nothing beyond the screen's edge."""

import pytest

from apps.accounts.models import Role
from apps.audit import services as audit
from tests.access.test_staff_browser import PHONE, inside_the_screen, signed_in
from tests.accounts.factories import UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CUSTOMER_ID = "0bb7c3fd-fcd0-442c-8076-7f5ce6b20419"


def test_the_audit_trail_on_a_phone_shows_every_event_readable(
    live_server, browser, compliance_officer
):
    customer_account = UserFactory(username=f"c-{CUSTOMER_ID}", role=Role.CUSTOMER)
    audit.record(
        actor=customer_account,
        action="request.opened",
        target_type="customers.customer",
        target_id=CUSTOMER_ID,
        details={"kind": "rectification", "fields": ["email"]},
    )
    audit.record(actor=compliance_officer, action="otp.verified")
    context = signed_in(browser, live_server, compliance_officer)
    page = context.new_page()
    page.goto(f"{live_server.url}/compliance/audit/")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    action = page.locator("td code", has_text="otp.verified")
    inside_the_screen(page, action)
    # The whole name is shown, not cut to "otp.ve…".
    assert action.evaluate("e => e.scrollWidth <= e.clientWidth")
    inside_the_screen(
        page, page.locator("td[data-label=Actor] .muted", has_text="Compliance officer")
    )
    actor = page.locator("td[data-label=Actor]", has_text="Customer 0bb7c3fd…")
    inside_the_screen(page, actor)
    details = page.get_by_text("fields: email", exact=True)
    details.scroll_into_view_if_needed()
    inside_the_screen(page, details)
    context.close()
