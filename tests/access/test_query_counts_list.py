"""An agent's customer list answers in a fixed number of queries, however many
customers the agent is assigned: each test measures a short list, grows it tenfold and
measures again under the same bound."""

import pytest
from rest_framework.test import APIClient

from apps.access.selectors import customer_search_for_staff
from apps.access.services import customers_read
from apps.crypto.keys import key_scope
from tests.access.factories import assign
from tests.customers.factories import make_customer

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

URL = "/api/v1/customers/"
SIZES = (3, 30)


def grow(agent, customers: list, size: int) -> None:
    """Assign the agent new customers until there are `size`."""
    while len(customers) < size:
        customer = make_customer()
        assign(agent, customer)
        customers.append(customer)


@pytest.mark.parametrize("role", ["support_agent", "delivery_agent"])
def test_the_agents_list_api_does_not_grow_with_the_list(
    request, role, django_assert_max_num_queries
):
    agent = request.getfixturevalue(role)
    api = APIClient()
    api.force_authenticate(agent)
    customers: list = []
    for size in SIZES:
        grow(agent, customers, size)
        api.get(URL)  # looks up the permission's id, once per process
        # The customers with their grant, open interaction, live reveals and data
        # key (1, prepared); the field policy; their active restrictions (1); the
        # access-log rows (1, one statement).
        with django_assert_max_num_queries(4):
            response = api.get(URL)
        assert response.status_code == 200
        # The whole list on one page: no further page to walk.
        assert response.json()["next"] is None
        assert len(response.json()["results"]) == size


@pytest.mark.parametrize("role", ["support_agent", "delivery_agent"])
def test_the_agents_list_does_not_grow_with_the_list(
    request, role, django_assert_max_num_queries
):
    agent = request.getfixturevalue(role)

    def read() -> list[dict]:
        with key_scope():
            search = customer_search_for_staff(actor=agent)
            return customers_read(actor=agent, customers=search.customers)

    customers: list = []
    for size in SIZES:
        grow(agent, customers, size)
        read()  # looks up the permission's id, once per process
        # As the API: the list in one prepared statement, the field policy, the
        # active restrictions, the access-log rows.
        with django_assert_max_num_queries(4):
            views = read()
        assert len(views) == size
