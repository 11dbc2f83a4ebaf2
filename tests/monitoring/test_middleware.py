"""Staff searches and 404s on customer ids are noted, without the searched value."""

import uuid

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from apps.monitoring.models import LookupKind, StaffLookup
from tests.access.factories import assign
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


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
    client.get(reverse("staff:desk"), {"email": "jane@example.com"})
    client.get(reverse("staff:desk"), {"phone": "+62 812 0000 1111"})
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
    api.get("/api/v1/customers/", {"email": "a@example.com", "phone": "+6281200001111"})
    assert StaffLookup.objects.get().search_by == "both"


def test_customers_and_anonymous_visitors_are_not_noted(client, customer_user):
    client.get(reverse("staff:customer", args=[uuid.uuid4()]))
    client.force_login(customer_user)
    client.get(reverse("staff:customer", args=[uuid.uuid4()]))
    assert not StaffLookup.objects.exists()
