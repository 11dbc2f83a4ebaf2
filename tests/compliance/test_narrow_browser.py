"""At 390 px the wide tables compliance staff read (the record of processing
activities' nine columns; a customer's "Shown" and "Recent access" tables) scroll
sideways in their own box: nothing is cut off, and the page is no wider than the
screen."""

from importlib import import_module

import pytest
from django.apps import apps
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SEEDS = (
    "apps.consent.migrations.0003_seed_purposes",
    "apps.inventory.migrations.0002_seed_inventory",
    "apps.retention.migrations.0002_seed_policies",
    "apps.compliance.migrations.0002_seed_activities",
)

PROBE = """(selector) => {
  const t = document.querySelector(selector);
  const box = t.closest('.table-scroll');
  const r = box && box.getBoundingClientRect();
  return {page: document.documentElement.scrollWidth,
          scrolls: box && getComputedStyle(box).overflowX,
          focusable: box && box.tabIndex === 0,
          label: box && box.getAttribute('aria-label'),
          left: r && r.left, right: r && r.right,
          box: box && box.clientWidth, table: t.scrollWidth};
}"""


def phone(browser, live_server, user):
    client = Client()
    sign_in(client, user)
    context = browser.new_context(viewport={"width": 390, "height": 844})
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


def assert_scrolls(page, selector):
    probe = page.evaluate(PROBE, selector)
    assert probe["page"] <= 390, probe
    assert probe["scrolls"] == "auto", probe
    # Keyboard users can scroll it too: a focusable, named region.
    assert probe["focusable"], probe
    assert probe["label"], probe
    assert probe["left"] >= 0, probe
    assert probe["right"] <= 390, probe
    # Wider than its box, so it scrolls: scrolled to the end, the last column shows.
    assert probe["table"] > probe["box"], probe
    page.evaluate(
        "(s) => { const b = document.querySelector(s).closest('.table-scroll');"
        " b.scrollLeft = b.scrollWidth; }",
        selector,
    )
    last = page.locator(f"{selector} thead th").last.bounding_box()
    assert last["x"] + last["width"] <= 391, last


def test_the_record_of_processing_activities_scrolls(
    live_server, browser, privacy_admin
):
    for seed in SEEDS:
        import_module(seed).seed(apps, None)
    context = phone(browser, live_server, privacy_admin)
    page = context.new_page()
    page.goto(f"{live_server.url}{reverse('compliance:ropa')}")
    assert_scrolls(page, ".ropa table")
    context.close()


def test_a_customers_tables_fit_or_scroll(live_server, browser, privacy_admin):
    customer = make_customer()
    context = phone(browser, live_server, privacy_admin)
    page = context.new_page()
    url = f"{live_server.url}{reverse('staff:customer', args=[customer.pk])}"
    page.goto(url)
    page.goto(url)  # the first read is now a recent access
    # The fields' table wraps its values into the phone's width: nothing to scroll.
    fields = page.evaluate(PROBE, "table#customer-fields")
    assert fields["page"] <= 390, fields
    assert fields["table"] <= fields["box"], fields
    assert fields["right"] <= 390, fields
    assert_scrolls(page, "table#recent-access")
    context.close()
