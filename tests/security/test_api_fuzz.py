"""Schemathesis over `/api/schema/`, signed in as each staff role in turn (API tokens
are for staff only; a customer gets none: tests/accounts/test_api.py).

Every operation gets generated requests (valid and invalid), sent to the app in-process
on PostgreSQL with the role's token. Checks: no 5xx; no success without credentials or
with bad ones (`ignored_auth` retries each successful call without and with a wrong
token); responses match the schema; a resource the API said was gone stays gone
(`use_after_free`); and the canary customer's PII never reaches a role that may not see
it. A stateful run follows the links between operations (create, then read, change,
close).

`AMANAH_SCHEMATHESIS_EXAMPLES` sets generated examples per operation and role: a few in
`make test`, enough in `make security` for 5,000+ cases; the count is printed last.
"""

import copy
import json
import os
import time

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.throttling import SimpleRateThrottle
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.generation.stateful.state_machine import (
    DEFAULT_STATE_MACHINE_SETTINGS,
)
from schemathesis.specs.openapi.checks import (
    ignored_auth,
    response_schema_conformance,
    use_after_free,
)

from apps.access.services import relay_signature
from config.wsgi import application
from tests.customers.factories import CANARY
from tests.security.conftest import CASES, PASSWORD, ROLES, World

pytestmark = [pytest.mark.postgres]

EXAMPLES = int(os.environ.get("AMANAH_SCHEMATHESIS_EXAMPLES", "1"))
# The coverage phase (boundary values of every parameter) in `make security` only.
COVERAGE_PHASE = os.environ.get("AMANAH_SCHEMATHESIS_COVERAGE", "") == "1"
# The same cases on every run of `make test` (a failure there is never luck);
# `make security` sets AMANAH_SCHEMATHESIS_SEED=random to explore.
SEED = os.environ.get("AMANAH_SCHEMATHESIS_SEED", "20261201")
DETERMINISTIC = SEED != "random"
# Stateful scenarios per role, and calls per scenario.
STATEFUL_EXAMPLES = int(os.environ.get("AMANAH_SCHEMATHESIS_STATEFUL", "1"))
STATEFUL_STEPS = 10
CANARY_VALUES = [v for k, v in CANARY.items() if k != "phone_e164"] + [
    CANARY["phone_e164"]
]
# Roles that never see any canary value in full: the canary is assigned to no agent,
# compliance sees everyone masked and cannot reveal. (A privacy admin may reveal.)
CANARY_BLIND_ROLES = {
    "support_agent",
    "delivery_agent",
    "compliance_officer",
}
# The roles that may hold an API token.
API_ROLES = tuple(role for role in ROLES if role != "customer")


def token_for(client: Client, username: str, password: str) -> str:
    response = client.post(
        "/api/v1/auth/token/",
        {"username": username, "password": password},
        content_type="application/json",
        HTTP_HOST="127.0.0.1",
    )
    assert response.status_code == 200, response.content
    return response.json()["token"]


# The role the current test signs in as (tests run one at a time).
signed_in_as = {"role": ""}


@schemathesis.check
def canary_not_leaked(ctx, response, case):
    """A role that may not see the canary customer receives none of its values."""
    role = signed_in_as["role"]
    if role not in CANARY_BLIND_ROLES:
        return None
    text = response.text
    for value in CANARY_VALUES:
        if value in text:
            raise AssertionError(
                f"{role} received a canary value from {case.operation.label}"
            )
    return None


CHECKS = [
    not_a_server_error,
    ignored_auth,
    use_after_free,
    response_schema_conformance,
    canary_not_leaked,
]


@pytest.fixture(params=API_ROLES)
def role_token(request, world: World, monkeypatch) -> tuple[str, str]:
    """A role, and the API token its user gets from token sign-in."""
    # Token sign-in is throttled (AMANAH_TOKEN_RATE); the fuzzer signs in far more
    # often than a person. DRF reads the rates into the class once, at import.
    monkeypatch.setattr(
        SimpleRateThrottle, "THROTTLE_RATES", {"token": "100000/minute"}
    )
    role = request.param
    token = token_for(Client(), world.users[role].username, PASSWORD)
    raw_schema(token)  # before `in_process_app`: Django's client reconnects the signals
    return role, token


@pytest.fixture
def in_process_app(role_token):
    """The WSGI app called in this test's transaction, as Django's test client calls
    it: the end of a request must not close the connection holding the transaction."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield application
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


_SCHEMA: dict = {}


def raw_schema(token: str) -> dict:
    """`/api/schema/` as JSON, generated once for every role's run. Read with a staff
    token, as production asks (development would serve it to anyone)."""
    if not _SCHEMA:
        response = Client().get(
            "/api/schema/?format=json",
            HTTP_HOST="127.0.0.1",
            HTTP_AUTHORIZATION=f"Token {token}",
        )
        assert response.status_code == 200
        _SCHEMA.update(json.loads(response.content))
    return _SCHEMA


@pytest.fixture
def api_schema(role_token, in_process_app):
    """The live schema, with the role's token as the bearer of `bearerAuth`."""
    role, token = role_token
    config = schemathesis.Config.from_dict(
        {
            **({"seed": int(SEED)} if DETERMINISTIC else {}),
            "generation": {"max-examples": EXAMPLES, "mode": "all"},
            "phases": {"coverage": {"enabled": COVERAGE_PHASE}},
            "auth": {"openapi": {"bearerAuth": {"bearer": token}}},
            "headers": {"Host": "127.0.0.1"},
        }
    )
    schema = schemathesis.openapi.from_dict(
        copy.deepcopy(raw_schema(token)), config=config
    )
    schema.app = in_process_app  # as `from_wsgi` does: calls go to it in-process
    schema.location = "/api/schema/"
    schema.amanah_role = role
    signed_in_as["role"] = role
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_as_each_role(case, api_schema):
    role = api_schema.amanah_role
    CASES[role] += 1
    case.call_and_validate(checks=CHECKS, **signed_relay(case))


def signed_relay(case) -> dict:
    """The relay webhook is public by design: the telephony provider signs each call
    with the shared secret, nobody signs in. Sign the generated body, so fuzzing gets
    past the signature to the routing behind it."""
    if case.operation.path != "/api/v1/contact/relay/":
        return {}
    if case.media_type != "application/json" or isinstance(case.body, NotSet):
        return {}
    try:
        body = json.dumps(case.body).encode()
    except TypeError:  # bytes: a negative case that is not JSON at all
        return {}
    timestamp = str(int(time.time()))
    return {
        "data": body,
        "headers": {
            "X-Amanah-Timestamp": timestamp,
            "X-Amanah-Signature": relay_signature(timestamp=timestamp, body=body),
        },
    }


def test_stateful_links_as_each_role(api_schema):
    """Sequences of calls along the links Schemathesis infers between operations
    (an id one returns is the path parameter of another)."""
    role = api_schema.amanah_role
    machine = api_schema.as_state_machine()

    class AsRole(machine):
        def before_call(self, case):
            CASES[role] += 1

        def get_call_kwargs(self, case):
            return signed_relay(case)

        def validate_response(self, response, case, additional_checks=None, **kw):
            case.validate_response(
                response,
                checks=CHECKS,
                transport_kwargs=kw or None,
                recorder=self.recorder,
            )

    AsRole.run(
        settings=hypothesis_settings(
            # Generation only, as Schemathesis runs it: the database moved on since a
            # failing scenario, so replaying it to shrink would not see the same data.
            DEFAULT_STATE_MACHINE_SETTINGS,
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            derandomize=DETERMINISTIC,
            database=None,
        )
    )
