"""A customer in a real headless Chromium (Debian's chromium, driven by Playwright)."""

from urllib.parse import urlsplit

import pytest

from apps.consent.models import ConsentSource
from apps.consent.services import consent_record, unsubscribe_url
from tests.consent.factories import reseed_purposes
from tests.portal.factories import PASSWORD, make_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_customer_switches_sms_off_then_unsubscribes_by_link(live_server, browser):
    reseed_purposes()
    customer = make_account(email="siti@example.com")
    # Her saved choice: the unsubscribe page, reached from an email, is in the
    # language the email was (apps/portal/views.py), her country's without one.
    customer.language = "en"
    customer.save(update_fields=["language"])
    for code in ("marketing_sms", "marketing_email"):
        consent_record(
            actor=None,
            customer=customer,
            purpose_code=code,
            granted=True,
            source=ConsentSource.DOUBLE_OPT_IN if code == "marketing_email" else "api",
        )
    page = browser.new_page()
    page.goto(f"{live_server.url}/me/login/")
    page.get_by_label("Email address").fill("siti@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    sms = page.get_by_role("switch", name="Marketing text messages: on, turn off")
    sms.click()
    page.get_by_text("Marketing text messages is now off.").wait_for()
    page.reload()
    switch = page.get_by_role("switch", name="Marketing text messages: off, turn on")
    assert switch.get_attribute("aria-checked") == "false"

    link = unsubscribe_url(customer_id=customer.pk, purpose_code="marketing_email")
    page.goto(live_server.url + urlsplit(link).path)
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("heading", name="You are unsubscribed").wait_for()

    page.goto(f"{live_server.url}/me/")
    assert page.get_by_role(
        "switch", name="Marketing emails: off, turn on"
    ).is_visible()
    page.close()
