"""Shared ground for the security suite: a small world of users (one per role) and
customers, Hypothesis profiles, and the count of API cases that ran.

`make test` runs this suite small and the same every time; `make security` sets
`AMANAH_SCHEMATHESIS_*` and the `security` Hypothesis profile for the long, random run.
"""

import os
from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings

from apps.accounts.models import Role, User
from apps.accounts.services import user_ensure_staff
from apps.customers.models import Customer
from apps.incidents.services import affected_select
from apps.portal.services import customer_account_enable
from apps.requests.services import request_open
from tests.access.factories import assign
from tests.customers.factories import make_canary, make_customer
from tests.incidents.factories import make_incident

# Examples per property: a few in `make test`, many in `make security`.
settings.register_profile(
    "fast",
    max_examples=25,
    derandomize=True,  # the same examples on every run: CI never fails by luck
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "security",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("AMANAH_HYPOTHESIS_PROFILE", "fast"))

ROLES = tuple(role.value for role in Role)
PASSWORD = "security-suite-password-41"

# API cases sent by Schemathesis, per role (printed at the end of the run).
CASES: Counter[str] = Counter()


def pytest_terminal_summary(terminalreporter):
    if not CASES:
        return
    per_role = ", ".join(f"{role} {n}" for role, n in sorted(CASES.items()))
    terminalreporter.write_line(
        f"schemathesis: {sum(CASES.values())} API cases ran ({per_role})"
    )


@dataclass
class World:
    """Who is who in a security test, and the records they work on."""

    users: dict[str, User]
    canary: Customer
    assigned_to_support: Customer
    assigned_to_delivery: Customer
    me: Customer  # the customer whose account `users["customer"]` is
    others: list[Customer] = field(default_factory=list)


def build_world() -> World:
    """One user per role; the canary assigned to nobody; one customer per agent; an
    incident affecting everyone and a request in the queue."""
    users = {
        role: user_ensure_staff(
            actor=None,
            username=f"sec-{role.replace('_', '-')}",
            role=role,
            password=PASSWORD,
            work_phone=phone,
        )
        for role, phone in (
            (Role.SUPPORT_AGENT, "+622150910001"),
            (Role.DELIVERY_AGENT, "+622150910002"),
            (Role.COMPLIANCE_OFFICER, ""),
            (Role.PRIVACY_ADMIN, ""),
        )
    }
    canary = make_canary(actor=users[Role.PRIVACY_ADMIN])
    support_case = make_customer(full_name="Support Case Person", city="Bandung")
    delivery = make_customer(full_name="Delivery Person", city="Surabaya")
    me = make_customer(full_name="Self Service Person", email="me@sec.example")
    users[Role.CUSTOMER] = customer_account_enable(
        actor=None, customer=me, password=PASSWORD
    )
    assign(users[Role.SUPPORT_AGENT], support_case)
    assign(users[Role.DELIVERY_AGENT], delivery)
    # Something in every list the API has: an incident and a request in the queue.
    admin = users[Role.PRIVACY_ADMIN]
    affected_select(actor=admin, incident=make_incident(admin), scope="all")
    request_open(actor=users[Role.CUSTOMER], customer=me, kind="objection")
    return World(
        users={str(role): user for role, user in users.items()},
        canary=canary,
        assigned_to_support=support_case,
        assigned_to_delivery=delivery,
        me=me,
        others=[make_customer(country="DE", region="DE-BE") for _ in range(2)],
    )


@pytest.fixture
def world(db) -> World:
    return build_world()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Schemathesis 4.32's lazy schemas read `node._nodeid` (pytest 9.2 keeps the id
    # elsewhere) to name each operation's subtest: give it the id to start from.
    if not hasattr(item, "_nodeid"):
        item._nodeid = item.nodeid
