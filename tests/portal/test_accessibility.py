"""Every customer page, in every language, at a phone's width and a laptop's, in
headless Chromium: axe-core finds no serious or critical violation, and a full-page
screenshot of each lands in screenshots/<language>/<width>/<page>.png. Then a customer
signs in and switches a consent with the keyboard alone, seeing where focus is."""

from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.core import mail, signing
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from apps.consent.models import Purpose
from apps.consent.services import (
    OPT_IN_SALT,
    consent_record,
    notice_publish,
    opt_in_request,
    unsubscribe_url,
)
from apps.incidents.services import affected_select, notices_queue, status_publish
from apps.incidents.tasks import notices_send_task
from apps.requests.services import request_open
from tests.a11y import WIDTHS, check_page, report, tab_to, without_focus_ring
from tests.accounts.factories import UserFactory
from tests.consent.factories import notice_changing, reseed_purposes
from tests.incidents.factories import make_incident
from tests.portal.factories import PASSWORD, make_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

EMAIL = "siti@example.com"
LANGUAGES = [code for code, _ in settings.LANGUAGES]


@pytest.fixture
def links():
    """A customer with something on every page (a consent, a breach notice, a
    status update, a finished export), and the links their emails would hold."""
    reseed_purposes()
    customer = make_account(email=EMAIL, full_name="Siti Rahma")
    consent_record(
        actor=None,
        customer=customer,
        purpose_code="marketing_email",
        granted=True,
        source="double_opt_in",
    )
    admin = UserFactory(username="privacy_admin", role="privacy_admin")
    incident = make_incident(admin)
    affected_select(actor=admin, incident=incident, scope="all")
    notices_queue(actor=admin, incident=incident)
    notices_send_task.delay(str(incident.pk))
    # An update on /status/, and so a banner on the customer's pages (English only:
    # the other languages say it is not written in theirs).
    status_publish(
        actor=admin,
        incident=make_incident(admin, kind="outage", title="Checkout is down"),
        phase="investigating",
        message="Payments fail; your data is not at risk.",
        data_at_risk="no",
    )
    request_open(actor=customer.user, customer=customer, kind="access")
    download = next(
        word
        for message in mail.outbox
        for word in message.body.split()
        if "/me/data/download/" in word
    )
    opt_in = opt_in_request(
        customer=customer, purpose=Purpose.objects.get(code="marketing_sms")
    )
    user = customer.user
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return {
        "download": urlsplit(download).path,
        "opt_in": f"/me/confirm/{signing.dumps(opt_in.pk, salt=OPT_IN_SALT)}/",
        "unsubscribe": urlsplit(
            unsubscribe_url(customer_id=customer.pk, purpose_code="marketing_email")
        ).path,
        "reset": f"/me/reset/{uid}/{default_token_generator.make_token(user)}/",
    }


def _submit(page) -> None:
    """Press the page's one form button (its words change with the language)."""
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state("load")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_customer_page_passes_axe_in_each_language_and_width(
    browser, live_server, links, language
):
    context = browser.new_context(locale=language)
    context.add_cookies(
        [
            {
                "name": settings.LANGUAGE_COOKIE_NAME,
                "value": language,
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    violations: list[tuple[str, str, str]] = []

    def visit(name: str, path: str | None = None, then=None) -> None:
        if path is not None:
            page.goto(live_server.url + path)
        if then is not None:
            then()
        # The page is in the language asked for (else the run checks the wrong one).
        lang = page.evaluate("document.documentElement.lang")
        if lang != language:
            violations.append(
                (f"<html lang> is {lang!r}, not {language!r}", "html", name)
            )
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            violations.extend(
                check_page(
                    page, f"{name} [{language}, {width}px]", language, str(width), name
                )
            )

    # Signed out: what anyone reaches from an email or the footer.
    visit("privacy", "/privacy/")
    visit("status", "/status/")
    visit("password-reset", "/me/password-reset/")
    visit("password-reset-sent", "/me/password-reset/sent/")
    visit("password-reset-confirm", links["reset"])
    visit("password-reset-complete", "/me/reset/done/")
    visit("unsubscribe", links["unsubscribe"])
    visit("unsubscribed", then=lambda: _submit(page))
    visit("opt-in", links["opt_in"])
    visit("opt-in-confirmed", then=lambda: _submit(page))
    # The export-ready email's link, signed out: sign-in, then the download page.
    visit("sign-in", links["download"])
    page.locator("input[type=email], input[name=email]").first.fill(EMAIL)
    page.locator("input[type=password]").first.fill(PASSWORD)
    visit("request-download-ready", then=lambda: _submit(page))
    # Signed in.
    visit("consents", "/me/")
    visit(
        "consent-switched",
        then=lambda: page.locator("#purpose-marketing_sms button[role=switch]").click(),
    )
    visit("my-data", "/me/data/")
    visit("my-notices", "/me/notices/")
    visit("notice", "/me/notice/")
    # A new notice that changes a purpose the customer answered for: the review page.
    notice_publish(
        actor=UserFactory(username="privacy_admin", role="privacy_admin"),
        notice=notice_changing(
            "marketing_email",
            "We now send marketing emails weekly.",
            material=True,
            description="Marketing emails come weekly.",
        ),
    )
    visit("notice-review", "/me/notice/")
    context.close()
    assert not violations, report(violations)


def test_a_customer_signs_in_and_switches_a_consent_with_the_keyboard_alone(
    live_server, browser
):
    from playwright.sync_api import expect

    reseed_purposes()
    make_account(email=EMAIL)
    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    page.goto(f"{live_server.url}/me/login/")

    passed = tab_to(page, "el.name === 'email'")
    page.keyboard.type(EMAIL)
    passed += tab_to(page, "el.type === 'password'")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/me/")

    passed += tab_to(
        page, "el.getAttribute('role') === 'switch' && el.closest('#purpose-analytics')"
    )
    assert page.evaluate("document.activeElement.getAttribute('aria-checked')") == (
        "false"
    )
    page.keyboard.press("Space")
    page.wait_for_load_state("load")
    # Announced (a status) and seen: on the screen, not scrolled away from it.
    confirmation = page.get_by_role("status").filter(has_text="is now on")
    expect(confirmation).to_be_visible()
    expect(confirmation).to_be_in_viewport()
    switch = page.locator("#purpose-analytics button[role=switch]")
    assert switch.get_attribute("aria-checked") == "true"
    # Every control passed through showed where focus was.
    assert passed
    assert not without_focus_ring(passed), without_focus_ring(passed)
    page.close()
