"""The audience API answers in a fixed number of queries, however many customers the
purpose reaches: each test measures a small audience, grows it tenfold and measures
again under the same bound."""

import pytest
from rest_framework.test import APIClient

from apps.consent.models import ConsentSource
from apps.retention.services import customer_erase
from tests.consent.factories import consent_answer
from tests.customers.factories import make_customer

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

AUDIENCE = "/api/v1/consent/audience/"
SIZES = (3, 30)


def grow_audience(customers: list, size: int) -> None:
    """Add customers until there are `size`, in every state an audience meets: granted,
    withdrawn, granted for another purpose only, never asked, granted then erased."""
    while len(customers) < size:
        customer = make_customer()
        state = len(customers) % 5
        if state != 3:
            code = "analytics" if state == 2 else "marketing_sms"
            consent_answer(customer, code, source=ConsentSource.SELF_SERVICE)
        if state == 1:
            consent_answer(
                customer, "marketing_sms", False, source=ConsentSource.SELF_SERVICE
            )
        if state == 4:
            customer_erase(actor=None, customer=customer)
        customers.append(customer)


@pytest.fixture
def api(privacy_admin) -> APIClient:
    client = APIClient()
    client.force_authenticate(privacy_admin)
    return client


def test_the_audience_for_given_ids_does_not_grow_with_them(
    api, django_assert_max_num_queries
):
    customers: list = []
    for size in SIZES:
        grow_audience(customers, size)
        body = {
            "purpose": "marketing_sms",
            "customer_ids": [str(c.pk) for c in customers],
            "include_unsubscribe": True,
        }
        # The purpose; the allowed ids among those given (one array parameter).
        with django_assert_max_num_queries(2):
            response = api.post(AUDIENCE, body, format="json")
        assert response.status_code == 200
        assert len(response.json()["allowed"]) == len(range(0, size, 5))


def test_the_audience_csv_does_not_grow_with_the_audience(
    api, django_assert_max_num_queries
):
    customers: list = []
    for size in SIZES:
        grow_audience(customers, size)
        # The purpose. The rows come from one COPY on the driver's own cursor, which
        # Django's query log does not see; a per-row query in Python would be seen.
        with django_assert_max_num_queries(1):
            response = api.get(f"{AUDIENCE}marketing_sms.csv")
            lines = b"".join(response.streaming_content).decode().splitlines()
        assert lines[0] == "customer_id"
        assert len(lines) == 1 + len(range(0, size, 5))
