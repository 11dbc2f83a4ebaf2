"""Staff searches and 404s on customer ids are noted, without the searched value."""

import uuid

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.accounts.services import token_issue, user_ensure_staff
from apps.monitoring.models import LookupKind, StaffLookup
from tests.access.factories import assign
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer
from tests.errors import error_code

pytestmark = pytest.mark.django_db

SEARCH = "/api/v1/customers/search/"


def test_a_404_on_a_customer_page_is_noted_with_the_id(client, support_agent):
    sign_in(client, support_agent)
    unknown = uuid.uuid4()
    response = client.get(reverse("staff:customer", args=[unknown]))
    assert response.status_code == 404
    lookup = StaffLookup.objects.get()
    assert (lookup.staff, lookup.kind, lookup.customer_id) == (
        support_agent,
        LookupKind.NOT_FOUND,
        unknown,
    )


def test_an_unassigned_customer_via_the_api_is_noted_too(support_agent):
    customer = make_customer()
    api = APIClient()
    api.force_authenticate(support_agent)
    assert api.get(f"/api/v1/customers/{customer.pk}/").status_code == 404
    assert StaffLookup.objects.get().customer_id == customer.pk


def test_an_assigned_customer_page_is_not_noted(client, support_agent):
    customer = make_customer()
    assign(support_agent, customer)
    sign_in(client, support_agent)
    assert client.get(reverse("staff:customer", args=[customer.pk])).status_code == 200
    assert not StaffLookup.objects.exists()


def test_a_search_is_noted_by_kind_never_by_value(client, support_agent):
    make_customer(email="jane@example.com")
    sign_in(client, support_agent)
    client.post(reverse("staff:desk"), {"email": "jane@example.com"})
    client.post(reverse("staff:desk"), {"phone": "+62 812 0000 1111"})
    client.get(reverse("staff:desk"))  # no search
    rows = list(
        StaffLookup.objects.order_by("pk").values("kind", "search_by", "customer_id")
    )
    assert rows == [
        {"kind": "search", "search_by": "email", "customer_id": None},
        {"kind": "search", "search_by": "phone", "customer_id": None},
    ]


def test_api_searches_are_noted(support_agent):
    api = APIClient()
    api.force_authenticate(support_agent)
    api.post(
        SEARCH,
        {"email": "a@example.com", "phone": "+6281200001111"},
        format="json",
    )
    assert StaffLookup.objects.get().search_by == "both"


@pytest.mark.parametrize(
    ("body", "search_by"),
    [
        ({"email": "a@example.com"}, "email"),
        ({"phone": "+6281200001111"}, "phone"),
        ({"email": "a@example.com", "phone": ""}, "email"),
    ],
)
def test_api_searches_are_noted_by_the_fields_they_name(support_agent, body, search_by):
    api = APIClient()
    api.force_authenticate(support_agent)
    assert api.post(SEARCH, body, format="json").status_code == 200
    lookup = StaffLookup.objects.get()
    assert (lookup.kind, lookup.search_by) == (LookupKind.SEARCH, search_by)


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@example.com"},
        {"phone": "+6281200001111"},
        {"email": "a@example.com", "phone": ""},
    ],
)
def test_a_multipart_api_search_is_refused_and_not_noted(support_agent, body):
    """The API reads JSON only: a form body is a 415 and no search runs, so the
    middleware (which notes searches answered with a 200) notes none."""
    api = APIClient()
    api.force_authenticate(support_agent)
    response = api.post(SEARCH, body, format="multipart")
    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"
    assert "a@example.com" not in response.content.decode()
    assert "1200001111" not in response.content.decode()
    assert not StaffLookup.objects.exists()


def test_an_api_search_with_a_token_is_noted(support_agent):
    token = token_issue(user=support_agent)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert (
        api.post(SEARCH, {"email": "a@example.com"}, format="json").status_code == 200
    )
    assert StaffLookup.objects.get().staff == support_agent


def test_every_search_of_an_enumeration_is_noted(support_agent):
    api = APIClient()
    api.force_authenticate(support_agent)
    for n in range(5):
        api.post(SEARCH, {"email": f"guess{n}@example.com"}, format="json")
    assert StaffLookup.objects.filter(kind=LookupKind.SEARCH).count() == 5


def test_the_admins_find_is_noted(client):
    admin = user_ensure_staff(
        actor=None, username="pa", role=Role.PRIVACY_ADMIN, password="long-password-1"
    )
    sign_in(client, admin)
    find = reverse("admin:customers_customer_find")
    assert client.post(find, {"phone": "+62 812 0000 1111"}).status_code == 200
    client.get(find)  # the empty form: no search
    lookup = StaffLookup.objects.get()
    assert (lookup.staff, lookup.kind, lookup.search_by) == (
        admin,
        LookupKind.SEARCH,
        "phone",
    )


def test_searches_that_did_not_run_are_not_noted(client, support_agent, delivery_agent):
    api = APIClient()
    api.force_authenticate(support_agent)
    # Refused in the URL, without a value, not JSON, not an object.
    assert api.get("/api/v1/customers/", {"email": "a@example.com"}).status_code == 400
    assert api.post(SEARCH, {"email": " "}, format="json").status_code == 400
    assert (
        api.post(SEARCH, "{not json", content_type="application/json").status_code
        == 400
    )
    assert (
        api.post(
            SEARCH, '["a@example.com"]', content_type="application/json"
        ).status_code
        == 400
    )
    sign_in(client, support_agent)
    assert (
        client.get(reverse("staff:desk"), {"email": "a@example.com"}).status_code == 400
    )
    assert client.post(reverse("staff:desk"), {"email": ""}).status_code == 400
    # A role without the desk's search.
    sign_in(client, delivery_agent)
    assert (
        client.post(reverse("staff:desk"), {"email": "a@example.com"}).status_code
        == 403
    )
    assert not StaffLookup.objects.exists()


def test_customers_and_anonymous_visitors_are_not_noted(client, customer_user):
    client.get(reverse("staff:customer", args=[uuid.uuid4()]))
    client.force_login(customer_user)
    client.get(reverse("staff:customer", args=[uuid.uuid4()]))
    assert not StaffLookup.objects.exists()
