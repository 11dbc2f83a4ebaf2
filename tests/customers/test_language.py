"""The one rule for the language of anything sent to a customer
(apps/customers/selectors.customer_language)."""

import pytest

from apps.customers.selectors import customer_language
from apps.customers.services import customer_language_set
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("country", "saved", "requested", "expected"),
    [
        ("ID", "de", "fa", "de"),  # the saved choice first
        ("ID", "", "fa", "fa"),  # else the language their own request came in
        ("DE", "", None, "de"),  # else their country's
        ("IR", "", "", "fa"),
        ("ID", "", None, "id"),
        ("GB", "", None, "en"),  # else English
        ("GB", "", "xx", "en"),  # a language not offered is no choice
    ],
)
def test_saved_then_requested_then_country_then_english(
    country, saved, requested, expected
):
    customer = make_customer(country=country, region="")
    if saved:
        customer = customer_language_set(customer=customer, language=saved)
    assert customer_language(customer, requested=requested) == expected
