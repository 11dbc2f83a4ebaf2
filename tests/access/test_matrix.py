"""Every customer endpoint, for every staff role, in each assignment state: the status
code, and which fields come back full, masked or not at all."""

from datetime import date

import pytest
from rest_framework.test import APIClient

from apps.access.defaults import DEFAULT_POLICY
from apps.accounts.models import GOVERNANCE_ROLES, Role
from apps.customers.masking import mask_field, show_full
from apps.customers.registry import PII_FIELDS
from tests.access.factories import assign, assign_then_close, assign_then_expire
from tests.accounts.factories import UserFactory
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db

STAFF = [
    Role.SUPPORT_AGENT,
    Role.DELIVERY_AGENT,
    Role.COMPLIANCE_OFFICER,
    Role.PRIVACY_ADMIN,
]
STATES = ["assigned", "never", "closed", "expired"]
URL = "/api/v1/customers/"


def setup_case(role: str, state: str):
    staff = UserFactory(username=f"staff-{role}", role=role)
    customer = make_customer(
        email="jane@example.com",
        phone="+62 812-3456-7890",
        full_name="Jane Doe",
        date_of_birth=date(1987, 6, 5),
    )
    if role in (Role.SUPPORT_AGENT, Role.DELIVERY_AGENT):
        {
            "assigned": assign,
            "closed": assign_then_close,
            "expired": assign_then_expire,
            "never": lambda *a: None,
        }[state](staff, customer)
    client = APIClient()
    client.force_authenticate(staff)
    return staff, customer, client


def can_see(role: str, state: str) -> bool:
    return role in GOVERNANCE_ROLES or state == "assigned"


def assert_fields_follow_policy(
    body: dict, role: str, customer, *, capped=False
) -> None:
    for spec in PII_FIELDS:
        visibility, _ = DEFAULT_POLICY[role][spec.category]
        if capped and visibility == "full":
            visibility = "masked"
        value = getattr(customer, spec.name)
        if visibility == "hidden":
            assert spec.name not in body, spec.name
        elif visibility == "full":
            assert body[spec.name] == show_full(value), spec.name
            assert body["shown"][spec.name] == "full"
        else:
            masked = mask_field(spec.name, value)
            assert body[spec.name] == masked, spec.name
            # A mask that keeps the value whole (a masked address's city) shows it
            # in full, and `shown` says so.
            whole = masked == show_full(value)
            assert body["shown"][spec.name] == ("full" if whole else "masked")


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", STAFF)
def test_detail(role, state):
    _, customer, client = setup_case(role, state)
    response = client.get(f"{URL}{customer.pk}/")
    if not can_see(role, state):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        return
    assert response.status_code == 200
    assert_fields_follow_policy(response.json(), role, customer)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", STAFF)
def test_list_without_filters(role, state):
    _, customer, client = setup_case(role, state)
    make_customer()  # someone nobody here is assigned to
    response = client.get(URL)
    assert response.status_code == 200
    ids = [row["id"] for row in response.json()["results"]]
    if role in GOVERNANCE_ROLES:
        assert len(ids) == 2
    else:
        assert ids == ([str(customer.pk)] if state == "assigned" else [])


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", STAFF)
def test_search_by_email(role, state):
    _, customer, client = setup_case(role, state)
    response = client.post(f"{URL}search/", {"email": "JANE@example.com"})
    assert response.status_code == 200
    results = response.json()["results"]
    found = role != Role.DELIVERY_AGENT or state == "assigned"
    assert [r["id"] for r in results] == ([str(customer.pk)] if found else [])
    if found:
        capped = role == Role.SUPPORT_AGENT
        assert_fields_follow_policy(results[0], role, customer, capped=capped)


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", STAFF)
def test_reveal_contact(role, state):
    _, customer, client = setup_case(role, state)
    response = client.post(
        f"{URL}{customer.pk}/reveal/",
        {"fields": ["email"], "reason": "Customer asked to be called back"},
        format="json",
    )
    if not can_see(role, state):
        assert response.status_code == 404
    elif role in (Role.SUPPORT_AGENT, Role.PRIVACY_ADMIN):
        assert response.status_code == 200
        assert response.json()["values"] == {"email": "jane@example.com"}
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("role", STAFF)
@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("patch", "", {"city": "Bandung"}),
        ("post", "close/", None),
        ("post", "erase/", None),
        ("get", "access-log/", None),
    ],
    ids=["patch", "close", "erase", "access-log"],
)
def test_privileged_endpoints(role, state, method, suffix, body):
    _, customer, client = setup_case(role, state)
    headers = {}
    if method == "patch":
        # A change names the version it read (428 without); a caller who cannot
        # read the customer has no ETag to send.
        etag = client.get(f"{URL}{customer.pk}/").headers.get("ETag")
        assert (etag is not None) == can_see(role, state)
        if etag is not None:
            headers["If-Match"] = etag
    response = getattr(client, method)(
        f"{URL}{customer.pk}/{suffix}", body, format="json", headers=headers
    )
    allowed = role == Role.PRIVACY_ADMIN or (
        suffix == "access-log/" and role == Role.COMPLIANCE_OFFICER
    )
    if not can_see(role, state):
        assert response.status_code == 404
    elif allowed:
        assert response.status_code == 200
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("role", STAFF)
def test_create_is_for_privacy_admins_only(role):
    staff = UserFactory(username=f"staff-{role}", role=role)
    client = APIClient()
    client.force_authenticate(staff)
    response = client.post(
        URL, {"country": "ID", "full_name": "New Person"}, format="json"
    )
    assert response.status_code == (201 if role == Role.PRIVACY_ADMIN else 403)


def test_another_customers_id_is_404_for_an_assigned_agent():
    _, customer, client = setup_case(Role.SUPPORT_AGENT, "assigned")
    other = make_customer()
    assert client.get(f"{URL}{customer.pk}/").status_code == 200
    assert client.get(f"{URL}{other.pk}/").status_code == 404
    assert client.get(f"{URL}00000000-0000-0000-0000-000000000000/").status_code == 404
