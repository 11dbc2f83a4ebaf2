"""The public receipt check in headless Chromium, on a phone and a desktop: each
receipt reads as a sentence, and key ids, hashes and ids wrap inside the card."""

import json

import pytest

from apps.consent.selectors import consent_receipts_for_customer
from apps.consent.services import consent_record, evidence_hash
from tests.consent.factories import reseed_purposes
from tests.customers.factories import make_customer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Whether anything in the card is wider than the card (a value spilling out).
SPILLS = """card => [card, ...card.querySelectorAll('*')].some(
    el => el.getBoundingClientRect().right > card.getBoundingClientRect().right + 1
) || card.scrollWidth > card.clientWidth + 1"""


@pytest.mark.parametrize("width", [390, 1280])
def test_a_valid_bundle_reads_as_sentences_and_wraps(live_server, browser, width):
    reseed_purposes()
    customer = make_customer(email="jane@example.com")
    for granted in (True, False):
        consent_record(
            actor=None,
            customer=customer,
            purpose_code="analytics",
            granted=granted,
            source="self_service",
            evidence=evidence_hash(ip="192.0.2.1", user_agent="Firefox"),
        )
    bundle = consent_receipts_for_customer(customer=customer)
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(f"{live_server.url}/receipts/verify/")
    page.get_by_label("Paste a receipt").fill(json.dumps(bundle))
    page.get_by_role("button", name="Check").click()
    status = page.get_by_role("status")
    status.wait_for()
    lines = page.locator("li.receipt-line > p")
    assert lines.count() == 2
    first = lines.nth(0).inner_text()
    assert first.startswith("Valid — Product analytics: granted on ")
    assert " UTC by you, under notice version 1 (signed by key " in first
    assert "withdrawn on" in lines.nth(1).inner_text()
    assert str(customer.pk) not in status.inner_text()  # folded away
    card = page.locator("section.card")
    assert not card.evaluate(SPILLS)
    page.get_by_text("Details as signed").first.click()
    details = page.locator("details").first
    assert str(customer.pk) in details.inner_text()
    assert bundle["receipts"][0]["evidence_hash"] in details.inner_text()
    assert not card.evaluate(SPILLS)
    assert page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )

    # Not valid, said in words, and a long key id wraps too.
    receipt = bundle["receipts"][0]
    receipt["signature"]["kid"] = "k" * 60
    page.get_by_label("Paste a receipt").fill(json.dumps(receipt))
    page.get_by_role("button", name="Check").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "Not valid." in alert.inner_text()
    assert "signed by an unknown key" in alert.inner_text()
    assert not card.evaluate(SPILLS)
    page.close()
