"""A privacy admin in headless Chromium marks an activity of the record reviewed; the
record prints without the page's navigation and buttons."""

from importlib import import_module

import pytest
from django.apps import apps
from django.conf import settings
from django.test import Client

from apps.compliance.models import ProcessingActivity
from tests.accounts.helpers import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SEEDS = (
    "apps.consent.migrations.0003_seed_purposes",
    "apps.inventory.migrations.0002_seed_inventory",
    "apps.retention.migrations.0002_seed_policies",
    "apps.compliance.migrations.0002_seed_activities",
)


def test_the_record_is_reviewed_and_printed(live_server, browser, privacy_admin):
    for seed in SEEDS:  # a transactional test may start from a flushed database
        import_module(seed).seed(apps, None)
    client = Client()
    sign_in(client, privacy_admin)
    context = browser.new_context()
    context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page = context.new_page()
    page.goto(f"{live_server.url}/compliance/ropa/")
    row = page.locator("tr#activity-delivery")
    assert "Review due" in row.inner_text()
    row.get_by_role("button", name="Mark reviewed").click()
    page.get_by_text("Activity delivery marked reviewed (audited).").wait_for()
    assert "Review due" not in page.locator("tr#activity-delivery").inner_text()
    assert ProcessingActivity.objects.get(code="delivery").reviewed_by == privacy_admin

    page.emulate_media(media="print")
    assert not page.locator("header.topbar").is_visible()
    assert not page.get_by_role("link", name="CSV").is_visible()
    assert not page.get_by_role("button", name="Mark reviewed").first.is_visible()
    assert page.locator("tr#activity-delivery").is_visible()
    page.emulate_media(media="screen")
    assert page.locator("header.topbar").is_visible()
    context.close()
