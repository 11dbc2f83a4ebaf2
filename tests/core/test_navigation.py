"""The navigation bar per role: every role's full list, in order (label, path)."""

from types import SimpleNamespace

import pytest
from django.contrib.auth.models import AnonymousUser
from django.test import RequestFactory
from django.urls import reverse

from apps.accounts.models import Role
from apps.core.context_processors import navigation
from apps.core.navigation import nav_items

GOVERNANCE_COMMON = [
    ("Home", "/"),
    ("Staff desk", "/staff/"),
    ("Reveals & relays", "/staff/oversight/"),
]
GOVERNANCE_TAIL = [
    ("Compliance", "/compliance/"),
    ("Incidents", "/compliance/incidents/"),
    ("Alerts", "/compliance/alerts/"),
    ("Requests", "/compliance/requests/"),
    ("Audit trail", "/compliance/audit/"),
    ("API docs", "/api/docs/"),
]
NAV_BY_ROLE = {
    "customer": [
        ("My consents", "/me/"),
        ("My data", "/me/data/"),
        ("Notices about my data", "/me/notices/"),
    ],
    "support_agent": [
        ("Home", "/"),
        ("Staff desk", "/staff/"),
        ("API docs", "/api/docs/"),
    ],
    "delivery_agent": [
        ("Home", "/"),
        ("Staff desk", "/staff/"),
        ("API docs", "/api/docs/"),
    ],
    "compliance_officer": [*GOVERNANCE_COMMON, *GOVERNANCE_TAIL],
    "privacy_admin": [
        *GOVERNANCE_COMMON,
        ("Access policy", "/staff/policy/"),
        *GOVERNANCE_TAIL[:4],
        ("Webhooks", "/webhooks/"),
        ("Import", "/imports/"),
        *GOVERNANCE_TAIL[4:],
    ],
    "": [],
}


def _nav(user, path: str = "/nowhere/") -> list[dict]:
    request = RequestFactory().get(path)
    request.user = user
    return navigation(request)["nav_items"]


@pytest.mark.parametrize("role", sorted(NAV_BY_ROLE))
def test_each_role_sees_its_full_navigation_in_order(role):
    user = SimpleNamespace(is_authenticated=True, role=role)
    items = _nav(user)
    assert [(i["label"], i["url"]) for i in items] == NAV_BY_ROLE[role]
    assert not any(i["current"] for i in items)


def test_the_current_page_is_marked():
    user = SimpleNamespace(is_authenticated=True, role="privacy_admin")
    items = _nav(user, "/compliance/incidents/")
    assert [i["label"] for i in items if i["current"]] == ["Incidents"]


def test_signed_out_visitors_have_no_navigation():
    assert _nav(AnonymousUser()) == []


def test_every_offered_entry_names_real_roles_and_a_real_page():
    """Apps declare their entries before models load, so with plain role values: a
    typo there would hide the entry from everyone without an error."""
    items = nav_items()
    assert items
    for item in items:
        assert set(item.roles) <= set(Role.values), item
        assert reverse(item.url_name), item
