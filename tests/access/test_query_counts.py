"""The staff desk answers in a fixed number of queries, however many interactions it
lists or customers a search matches: each test measures a small data set, grows it
tenfold and measures again under the same bound."""

import pytest
from django.urls import reverse

from tests.access.factories import assign
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

SIZES = (3, 30)
SHARED_PHONE = "+62 812-5550-0101"


def grow(customers: list, size: int, *, agent=None) -> None:
    """Add customers sharing one phone number until there are `size`, each with an
    open interaction with `agent` if given."""
    while len(customers) < size:
        customer = make_customer(phone=SHARED_PHONE)
        if agent is not None:
            assign(agent, customer)
        customers.append(customer)


@pytest.mark.parametrize("role", ["support_agent", "delivery_agent"])
def test_the_desk_does_not_grow_with_the_agents_interactions(
    client, request, role, django_assert_max_num_queries
):
    agent = request.getfixturevalue(role)
    sign_in(client, agent)
    customers: list = []
    for size in SIZES:
        grow(customers, size, agent=agent)
        client.get(reverse("staff:desk"))  # stamps the session's last-seen time
        # The session, the user and their second-factor device (3); the open
        # interactions, their customers joined (1); their customers' active
        # restrictions (1); the names the role sees: the policy (1), the agent's
        # assigned customers with their data keys (1), their restrictions (1) and
        # the access-log rows of the names shown (1, one statement).
        with django_assert_max_num_queries(9):
            response = client.get(reverse("staff:desk"))
        assert response.status_code == 200
        assert response.content.decode().count("Close</button>") == size


def test_a_support_agents_desk_search_does_not_grow_with_the_matches(
    client, support_agent, django_assert_max_num_queries
):
    sign_in(client, support_agent)
    customers: list = []
    for size in SIZES:
        grow(customers, size, agent=support_agent)
        # Stamps the session's last-seen time, and fills what a process remembers.
        client.post(reverse("staff:desk"), {"phone": SHARED_PHONE})
        # The session, the user and their second-factor device (3); the open
        # interactions (1); the match (at most one for an agent: 1); the data keys,
        # the field policy, the open interactions and live reveals of the match
        # (4); the access-log rows (1, one statement); the lookup monitoring
        # record, in a savepoint (3); the active restrictions of the interactions'
        # customers and of the match (2); the names on the desk: the policy, the
        # assigned customers, their restrictions, their access-log rows (at most 4;
        # the match's data key is then known: 3 more in all).
        with django_assert_max_num_queries(18):
            response = client.post(reverse("staff:desk"), {"phone": SHARED_PHONE})
        assert response.status_code == 200
        html = response.content.decode()
        assert html.count("Close</button>") == size
        assert html.count("Open support case</button>") == 1


def test_a_governance_desk_search_does_not_grow_with_the_matches(
    client, compliance_officer, django_assert_max_num_queries
):
    sign_in(client, compliance_officer)
    customers: list = []
    for size in SIZES:
        grow(customers, size)
        # Stamps the session's last-seen time, and fills what a process remembers.
        client.post(reverse("staff:desk"), {"phone": SHARED_PHONE})
        # As an agent's search, for up to 20 matches: the session, the user and the
        # device (3); their own open interactions (1); the matches (1); the data keys,
        # the field policy, open interactions and live reveals (4); the access-log
        # rows (1); the lookup monitoring record, in a savepoint (3); the matches'
        # active restrictions (1).
        with django_assert_max_num_queries(14):
            response = client.post(reverse("staff:desk"), {"phone": SHARED_PHONE})
        assert response.status_code == 200
        assert response.content.decode().count(">View</a>") == min(size, 20)
