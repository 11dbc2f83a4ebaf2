import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Role
from tests.accounts.factories import UserFactory
from tests.customers.factories import make_customer
from tests.errors import error_fields

pytestmark = pytest.mark.django_db

URL = "/api/v1/interactions/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_support_agent_finds_a_customer_opens_a_case_and_closes_it(support_agent):
    customer = make_customer(email="jane@example.com")
    api = client_for(support_agent)
    search = api.post("/api/v1/customers/search/", {"email": "jane@example.com"})
    found = search.json()["results"]
    assert found[0]["full_name"] == "J••• D•••"  # a search result is masked at most

    opened = api.post(URL, {"customer": found[0]["id"], "kind": "support_case"})
    assert opened.status_code == 201, opened.json()
    body = opened.json()
    assert body["is_open"] is True
    assert body["staff"] == "support"
    assert opened["Location"] == f"{URL}{body['id']}/"
    assert api.get(opened["Location"]).json() == body

    detail = api.get(f"/api/v1/customers/{customer.pk}/").json()
    assert detail["full_name"] == "Jane Doe"  # assigned: name in full

    assert [i["id"] for i in api.get(URL).json()["results"]] == [body["id"]]
    closed = api.post(f"{URL}{body['id']}/close/")
    assert closed.status_code == 200
    assert closed.json()["is_open"] is False
    assert api.get(URL).json() == {"next": None, "results": []}
    every = api.get(URL, {"state": "all"}).json()
    assert every["next"] is None
    assert [i["id"] for i in every["results"]] == [body["id"]]
    assert api.get(f"/api/v1/customers/{customer.pk}/").status_code == 404


def test_a_privacy_admin_dispatches_a_delivery(privacy_admin, delivery_agent):
    customer = make_customer()
    response = client_for(privacy_admin).post(
        URL, {"customer": str(customer.pk), "kind": "delivery", "staff": "delivery"}
    )
    assert response.status_code == 201
    listed = client_for(delivery_agent).get(URL).json()["results"]
    assert [i["customer"] for i in listed] == [str(customer.pk)]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "support_case"}, "customer"),
        ({"customer": "not-a-uuid", "kind": "support_case"}, "customer"),
        ({"customer": None, "kind": "nope"}, "kind"),
        ({"customer": None, "kind": "delivery", "staff": "ghost"}, "staff"),
    ],
)
def test_bad_input_gets_400_naming_the_field(privacy_admin, body, field):
    customer = make_customer()
    if body.get("customer", "") is None:
        body["customer"] = str(customer.pk)
    response = client_for(privacy_admin).post(URL, body, format="json")
    assert response.status_code == 400
    assert field in error_fields(response)


def test_an_unknown_customer_is_404(support_agent):
    response = client_for(support_agent).post(
        URL,
        {"customer": "00000000-0000-0000-0000-000000000000", "kind": "support_case"},
    )
    assert response.status_code == 404


def test_someone_elses_interaction_cannot_be_closed(support_agent):
    other = UserFactory(username="other", role=Role.SUPPORT_AGENT)
    customer = make_customer()
    opened = client_for(other).post(
        URL, {"customer": str(customer.pk), "kind": "support_case"}
    )
    response = client_for(support_agent).post(f"{URL}{opened.json()['id']}/close/")
    assert response.status_code == 404


def test_customers_and_anonymous_callers_are_refused(customer_user):
    assert client_for(customer_user).get(URL).status_code == 403
    assert APIClient().get(URL).status_code == 401
