"""The retention report's chart in a real browser: every label, the busiest month's
value above its bar included, is drawn inside the SVG's viewBox (none clipped)."""

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from apps.retention import views
from tests.accounts.helpers import sign_in

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

OUTSIDE = """() => {
  const svg = document.querySelector('svg.chart');
  const box = svg.viewBox.baseVal;
  return [...svg.querySelectorAll('text')].map(t => {
    const b = t.getBBox();
    return {text: t.textContent, top: b.y, bottom: b.y + b.height,
            left: b.x, right: b.x + b.width};
  }).filter(b => b.top < box.y || b.left < box.x
      || b.bottom > box.y + box.height || b.right > box.x + box.width);
}"""


def test_no_chart_label_is_clipped(
    live_server, browser, compliance_officer, monkeypatch
):
    months = [{"month": f"2026-{n:02}", "disposed": n * 10} for n in range(1, 13)]
    monkeypatch.setattr(views, "disposed_per_month", lambda: months)
    client = Client()
    sign_in(client, compliance_officer)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
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
    page.goto(f"{live_server.url}{reverse('retention:report')}")
    assert page.locator("svg.chart text.value").last.text_content() == "120"
    assert page.evaluate(OUTSIDE) == []
    context.close()
