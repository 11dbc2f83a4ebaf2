"""The staff pages in a real browser on a phone (390 px): the desk shows each
customer's name and the Time left and Close of each case in full; the policy editor
never widens the page; and a reveal's values leave the page when its time is up, each
value at the end of the reveal that opened it, on the server's clock whatever the
browser's says."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.access.models import Reveal
from tests.access.factories import assign
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def signed_in(browser, live_server, user, viewport=PHONE):
    client = Client()
    sign_in(client, user)
    context = browser.new_context(viewport=viewport)
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    return context


def inside_the_screen(page, locator) -> None:
    box = locator.bounding_box()
    assert box is not None
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= PHONE["width"], box


def test_the_delivery_desk_on_a_phone_shows_name_address_time_and_close(
    live_server, browser, delivery_agent
):
    customer = make_customer(
        full_name="Budi Santoso", address_line="Jl. Kenanga 4", city="Jakarta"
    )
    assign(delivery_agent, customer)
    context = signed_in(browser, live_server, delivery_agent)
    page = context.new_page()
    page.goto(f"{live_server.url}{reverse('staff:desk')}")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    name = page.get_by_role("link", name="Budi Santoso")
    assert name.is_visible()
    inside_the_screen(page, name)
    address = page.locator(".desk-address")
    assert "Jl. Kenanga 4" in address.inner_text()
    inside_the_screen(page, address)
    time_left = page.locator("td.desk-time")
    label = time_left.evaluate("(td) => getComputedStyle(td, '::before').content")
    assert label == '"Time left: "'
    assert time_left.inner_text() == "24 h"
    inside_the_screen(page, time_left)
    close = page.get_by_role("button", name="Close")
    assert close.is_visible()
    inside_the_screen(page, close)
    context.close()


def test_the_support_desk_on_a_phone_shows_the_name(
    live_server, browser, support_agent
):
    assign(support_agent, make_customer(full_name="Siti Rahma"))
    context = signed_in(browser, live_server, support_agent)
    page = context.new_page()
    page.goto(f"{live_server.url}{reverse('staff:desk')}")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    inside_the_screen(page, page.get_by_role("link", name="Siti Rahma"))
    inside_the_screen(page, page.locator("td.desk-time"))
    inside_the_screen(page, page.get_by_role("button", name="Close"))
    context.close()


def test_the_policy_editor_never_widens_the_page_on_a_phone(
    live_server, browser, privacy_admin
):
    context = signed_in(browser, live_server, privacy_admin)
    page = context.new_page()
    page.goto(f"{live_server.url}{reverse('staff:policy')}")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    box = page.locator("#policy-grid").locator("xpath=..")
    assert box.get_attribute("role") == "region"
    assert box.get_attribute("aria-label")
    inside_the_screen(page, box)
    inside_the_screen(page, page.get_by_role("button", name="Save changes"))
    context.close()


def test_the_countdown_removes_revealed_values_when_time_is_up(
    live_server, browser, support_agent
):
    customer = make_customer(email="jane@example.com")
    assign(support_agent, customer)
    client = Client()
    sign_in(client, support_agent)
    url = reverse("staff:customer", args=[customer.pk])
    client.post(url, {"fields": ["email"], "reason": "Customer asked for a callback"})
    # A short window: the reveal ends a few seconds from now.
    Reveal.objects.update(expires_at=timezone.now() + timedelta(seconds=4))
    context = signed_in(
        browser, live_server, support_agent, {"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.goto(f"{live_server.url}{url}")
    assert "jane@example.com" in page.content()
    assert "left" in page.locator("#reveal-timer .reveal-left").inner_text()
    page.locator("[data-revealed]").wait_for(state="detached", timeout=10_000)
    assert "jane@example.com" not in page.content()
    assert "The reveal expired" in page.locator("#reveal-announce").inner_text()
    assert page.locator("#reveal-timer").is_hidden()
    context.close()


def reveal_both(client, support_agent, customer, *, email_in, phone_in):
    """Reveal the email, then the phone, and end them `email_in` and `phone_in`
    seconds from now."""
    url = reverse("staff:customer", args=[customer.pk])
    for name in ("email", "phone"):
        client.post(url, {"fields": [name], "reason": "Customer asked for a callback"})
    now = timezone.now()
    Reveal.objects.filter(fields=["email"]).update(
        expires_at=now + timedelta(seconds=email_in)
    )
    Reveal.objects.filter(fields=["phone"]).update(
        expires_at=now + timedelta(seconds=phone_in)
    )
    return url


def test_the_earlier_ending_reveal_leaves_the_page_first(
    live_server, browser, support_agent
):
    customer = make_customer(email="jane@example.com", phone="+62 812-5550-0199")
    assign(support_agent, customer)
    client = Client()
    sign_in(client, support_agent)
    url = reveal_both(client, support_agent, customer, email_in=4, phone_in=120)
    context = signed_in(
        browser, live_server, support_agent, {"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.goto(f"{live_server.url}{url}")
    assert "jane@example.com" in page.content()
    assert customer.phone in page.content()
    page.locator('td[data-field="email"][data-revealed]').wait_for(
        state="detached", timeout=10_000
    )
    assert "jane@example.com" not in page.content()
    # The phone's reveal runs on: its value and its countdown stay.
    assert customer.phone in page.locator('td[data-field="phone"]').inner_text()
    assert page.locator("#reveal-timer").is_visible()
    phone_left = page.locator('#reveal-timer li[data-field="phone"] .reveal-left')
    assert phone_left.inner_text().endswith(" left")
    assert (
        "The reveal of Email expired" in page.locator("#reveal-announce").inner_text()
    )
    context.close()


@pytest.mark.parametrize("skew_minutes", [60, -60])
def test_the_countdown_runs_on_the_servers_clock(
    live_server, browser, support_agent, skew_minutes
):
    customer = make_customer(email="jane@example.com")
    assign(support_agent, customer)
    client = Client()
    sign_in(client, support_agent)
    url = reverse("staff:customer", args=[customer.pk])
    client.post(url, {"fields": ["email"], "reason": "Customer asked for a callback"})
    Reveal.objects.update(expires_at=timezone.now() + timedelta(seconds=5))
    context = signed_in(
        browser, live_server, support_agent, {"width": 1280, "height": 900}
    )
    # The browser's clock an hour fast or slow.
    context.add_init_script(
        "(() => { const now = Date.now;"
        f" Date.now = () => now() + {skew_minutes * 60_000}; }})();"
    )
    page = context.new_page()
    page.goto(f"{live_server.url}{url}")
    page.wait_for_timeout(1_000)
    # A fast clock takes nothing off early...
    assert "jane@example.com" in page.locator('td[data-field="email"]').inner_text()
    assert page.locator("#reveal-timer .reveal-left").inner_text().endswith(" left")
    # ...and a slow one keeps nothing on past its end.
    page.locator("[data-revealed]").wait_for(state="detached", timeout=10_000)
    assert "jane@example.com" not in page.content()
    context.close()


def revealed_for_seconds(browser, live_server, agent, customer, *, seconds, js=True):
    """A browser on a phone, signed in as `agent`, with a reveal of the email that
    ends `seconds` from now, sent by the form (its "Revealed for…" message waits in
    the cookies the browser is given)."""
    client = Client()
    sign_in(client, agent)
    url = reverse("staff:customer", args=[customer.pk])
    client.post(url, {"fields": ["email"], "reason": "Customer asked for a callback"})
    Reveal.objects.update(expires_at=timezone.now() + timedelta(seconds=seconds))
    context = browser.new_context(viewport=PHONE, java_script_enabled=js)
    context.add_cookies(
        [
            {"name": name, "value": morsel.value, "url": live_server.url}
            for name, morsel in client.cookies.items()
        ]
    )
    page = context.new_page()
    page.goto(f"{live_server.url}{url}")
    return context, page


def test_when_a_reveal_ends_the_page_says_so_and_offers_it_again(
    live_server, browser, support_agent
):
    customer = make_customer(email="jane@example.com", city="Coburg")
    assign(support_agent, customer)
    context, page = revealed_for_seconds(
        browser, live_server, support_agent, customer, seconds=6
    )
    assert "jane@example.com" in page.content()
    assert page.locator(".message.reveal-opened").is_visible()
    shown = page.locator('#customer-fields tr:has(th:text("Email")) td').last
    assert shown.inner_text() == "full"
    # On a phone the table, its "Shown" column included, fits the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    # Its scroll box (the card's width) need not scroll.
    assert page.locator("#customer-fields").evaluate(
        "t => t.parentElement.scrollWidth <= t.parentElement.clientWidth"
    )
    next_steps = page.locator("#next-steps")
    assert "Email is revealed until" in next_steps.inner_text()
    assert "nothing here" not in next_steps.inner_text()
    assert page.get_by_label("Email", exact=True).is_hidden()

    page.locator("[data-revealed]").wait_for(state="detached", timeout=15_000)
    assert "jane@example.com" not in page.content()
    assert shown.inner_text() == "masked"
    assert page.locator(".message.reveal-opened").count() == 0
    assert "Email is revealed" not in next_steps.inner_text()
    assert "Reveal Email, Phone in full" in next_steps.inner_text()
    assert "Email" in page.locator("#masked-fields").inner_text()
    box = page.get_by_label("Email", exact=True)
    assert box.is_visible()
    assert box.is_enabled()
    context.close()


def test_without_javascript_a_revealed_value_leaves_the_screen_at_its_end(
    live_server, browser, support_agent
):
    customer = make_customer(email="jane@example.com")
    assign(support_agent, customer)
    context, page = revealed_for_seconds(
        browser, live_server, support_agent, customer, seconds=5, js=False
    )
    assert "jane@example.com" in page.locator("#customer-fields").inner_text()
    assert "more minute" not in page.content()
    # No reload by hand: the page reloads itself once the reveal has ended.
    page.get_by_text("jane@example.com").wait_for(state="detached", timeout=15_000)
    page.wait_for_load_state()
    assert "j•••@example.com" in page.locator("#customer-fields").inner_text()
    assert "Your reveal of Email" in page.content()
    assert page.get_by_label("Email", exact=True).is_visible()
    context.close()
