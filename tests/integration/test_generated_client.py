"""The integrator's test: a client generated from the schema the running app serves
(`openapi-python-client`, as an integrator would), imported module by module, then
driving the main flow against a live server: sign in, create, search, open a case,
read, change with If-Match, reveal, consent with its 202, the audience as JSON and as
CSV, and an error of each kind parsed into the schema's Error model."""

import importlib
import pkgutil
import shutil
import subprocess  # nosec B404 - runs the generator the test is about
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from django.core.cache import cache
from django.test import override_settings

from apps.accounts.models import Role
from tests.accounts.factories import PASSWORD, UserFactory
from tests.consent.factories import reseed_purposes
from tests.customers.factories import make_customer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PACKAGE = "amanah_client"


def _generator() -> str:
    found = shutil.which(
        "openapi-python-client", path=str(Path(sys.executable).parent)
    ) or shutil.which("openapi-python-client")
    if found is None:
        pytest.fail("openapi-python-client is not installed (requirements/dev.txt)")
    return found


def _sign_in(base: str, username: str) -> str:
    response = httpx.post(
        f"{base}/api/v1/auth/token/",
        json={"username": username, "password": PASSWORD},
    )
    assert response.status_code == 200, response.text
    return response.json()["token"]


@pytest.fixture
def generated(live_server, privacy_admin, tmp_path):
    """The generated package, made from the schema the live server serves."""
    token = _sign_in(live_server.url, privacy_admin.username)
    schema = httpx.get(
        f"{live_server.url}/api/schema.json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert schema.status_code == 200, schema.text
    (tmp_path / "schema.json").write_bytes(schema.content)
    (tmp_path / "config.yaml").write_text(
        f"project_name_override: amanah-client\npackage_name_override: {PACKAGE}\n"
    )
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    result = subprocess.run(  # noqa: S603  # nosec B603 - fixed arguments
        [
            _generator(),
            "generate",
            "--path",
            str(tmp_path / "schema.json"),
            "--config",
            str(tmp_path / "config.yaml"),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / PACKAGE),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout, result.stdout
    sys.path.insert(0, str(tmp_path))
    try:
        yield _import_all()
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def _import_all():
    package = importlib.import_module(PACKAGE)
    failures = {}
    count = 0
    for module in pkgutil.walk_packages(package.__path__, f"{PACKAGE}."):
        count += 1
        try:
            importlib.import_module(module.name)
        except Exception as exc:  # every failure is reported, not just the first
            failures[module.name] = repr(exc)
    assert failures == {}, failures
    assert count > 50
    return package


def op(name: str):
    """An operation's module of the generated client, by tag and operation id."""
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def models():
    return importlib.import_module(f"{PACKAGE}.models")


def client(base: str, token: str | None = None):
    package = importlib.import_module(PACKAGE)
    if token is None:
        return package.Client(base_url=base)
    return package.AuthenticatedClient(base_url=base, token=token)


def test_the_generated_client_drives_the_main_flow(
    generated, live_server, privacy_admin, support_agent
):
    reseed_purposes()
    m = models()
    base = live_server.url
    anonymous = client(base)

    # Sign in through the client itself: each sign-in is a token of its own.
    signed = op("auth.sign_in").sync(
        client=anonymous,
        body=m.StaffAuthTokenRequest(username="privacy_admin", password=PASSWORD),
    )
    assert isinstance(signed, m.TokenCreateOutput), signed
    admin = client(base, signed.token)  # sends `Authorization: Bearer ...`
    me = op("auth.get_me").sync(client=admin)
    assert me.username == "privacy_admin"
    assert me.role == m.RoleEnum.PRIVACY_ADMIN

    # Create: 201 with a Location the client can follow.
    created = op("customers.create_customer").sync_detailed(
        client=admin,
        body=m.CustomerInputRequest(
            country="ID",
            full_name="Siti Rahma",
            email="siti.flow@example.com",
            phone="0812-3456-7890",
        ),
    )
    assert created.status_code == 201, created.content
    customer = created.parsed
    assert isinstance(customer, m.CustomerOutput)
    assert customer.status == m.CustomerStatusEnum.ACTIVE
    assert created.headers["Location"] == f"/api/v1/customers/{customer.id}/"

    # Read with its ETag; change it with If-Match; a stale tag is a parsed 412.
    read = op("customers.get_customer").sync_detailed(customer.id, client=admin)
    assert read.status_code == 200
    etag = read.headers["ETag"]
    changed = op("customers.update_customer").sync_detailed(
        customer.id,
        client=admin,
        body=m.PatchedCustomerInputRequest(city="Jakarta"),
        if_match=etag,
    )
    assert changed.status_code == 200, changed.content
    assert changed.headers["ETag"] != etag
    stale = op("customers.update_customer").sync(
        customer.id,
        client=admin,
        body=m.PatchedCustomerInputRequest(city="Bandung"),
        if_match=etag,
    )
    assert isinstance(stale, m.Error), stale
    assert stale.status == 412

    # A support agent finds the customer (masked) and opens a case, retried safely.
    agent = client(base, _sign_in(base, support_agent.username))
    found = op("customers.search_customers").sync(
        client=agent, body=m.CustomerSearchInputRequest(email="SITI.flow@example.com")
    )
    assert isinstance(found, m.PaginatedCustomerOutputList), found
    assert [c.id for c in found.results] == [customer.id]
    assert found.results[0].email != "siti.flow@example.com"  # masked
    key = str(uuid.uuid4())
    body = m.InteractionListCreateInputRequest(
        customer=customer.id, kind=m.InteractionKindEnum.SUPPORT_CASE
    )
    first = op("interactions.open_interaction").sync_detailed(
        client=agent, body=body, idempotency_key=key
    )
    retry = op("interactions.open_interaction").sync_detailed(
        client=agent, body=body, idempotency_key=key
    )
    assert first.status_code == retry.status_code == 201
    assert first.parsed.id == retry.parsed.id
    assert retry.headers["Idempotent-Replayed"] == "true"
    mine = op("interactions.list_interactions").sync(client=agent)
    assert [i.id for i in mine.results] == [first.parsed.id]

    # Assigned now: the agent reads the customer and reveals the phone, for a reason.
    assert op("customers.get_customer").sync(customer.id, client=agent).full_name == (
        "Siti Rahma"
    )
    revealed = op("customers.reveal_customer").sync(
        customer.id,
        client=agent,
        body=m.CustomerRevealInputRequest(
            fields=[m.FieldsEnum.PHONE], reason="Customer called about a refund"
        ),
    )
    assert isinstance(revealed, m.CustomerRevealOutput), revealed
    assert revealed.values["phone"] == "+6281234567890"

    # Consent: marketing email needs the customer's confirmation, a 202.
    asked = op("customers.change_customer_consent").sync_detailed(
        customer.id,
        client=admin,
        body=m.CustomerConsentsInputRequest(
            purpose="marketing_email",
            granted=True,
            reason="Customer asked on the phone",
        ),
    )
    assert asked.status_code == 202, asked.content
    pending = {row.purpose: row.pending for row in asked.parsed}
    assert pending["marketing_email"] is True
    granted = op("customers.change_customer_consent").sync_detailed(
        customer.id,
        client=admin,
        body=m.CustomerConsentsInputRequest(
            purpose="marketing_sms", granted=True, reason="Customer asked on the phone"
        ),
    )
    assert granted.status_code == 200, granted.content

    # The audience, as JSON for given ids and as CSV for everyone.
    audience = op("consent.query_audience").sync(
        client=admin,
        body=m.AudienceInputRequest(
            purpose="marketing_sms", customer_ids=[customer.id, uuid.uuid4()]
        ),
    )
    assert isinstance(audience, m.AudienceOutput), audience
    assert audience.allowed == [customer.id]
    csv = op("consent.export_audience_csv").sync("marketing_sms", client=admin)
    assert csv.splitlines() == ["customer_id", str(customer.id)]


def test_every_kind_of_error_parses_into_the_error_model(
    generated, live_server, privacy_admin
):
    m = models()
    base = live_server.url
    admin = client(base, _sign_in(base, privacy_admin.username))
    customer = make_customer(email="taken@example.com")

    def error(result, status: int):
        assert isinstance(result, m.Error), result
        assert result.status == status
        assert result.detail
        return result

    # 400: a field, named.
    bad = error(
        op("customers.create_customer").sync(
            client=admin, body=m.CustomerInputRequest(country="ZZ")
        ),
        400,
    )
    assert [e.field for e in bad.errors] == ["country"]
    # 401: a token that is not one.
    error(op("customers.list_customers").sync(client=client(base, "amk_nope")), 401)
    # 403: a role that may not (a support agent lists alerts).
    UserFactory(username="support2", role=Role.SUPPORT_AGENT)
    agent = client(base, _sign_in(base, "support2"))
    error(op("alerts.list_alerts").sync(client=agent), 403)
    # 404: an id nobody may see.
    error(op("customers.get_customer").sync(uuid.uuid4(), client=admin), 404)
    # 409: the email is taken.
    error(
        op("customers.create_customer").sync(
            client=admin,
            body=m.CustomerInputRequest(country="ID", email="taken@example.com"),
        ),
        409,
    )
    # 422: an Idempotency-Key used again with another body.
    key = str(uuid.uuid4())
    op("customers.create_customer").sync(
        client=admin, body=m.CustomerInputRequest(country="ID"), idempotency_key=key
    )
    error(
        op("customers.create_customer").sync(
            client=admin,
            body=m.CustomerInputRequest(country="MY"),
            idempotency_key=key,
        ),
        422,
    )
    # 428: a change that does not say which version it changes.
    error(
        op("customers.update_customer").sync(
            customer.id,
            client=admin,
            body=m.PatchedCustomerInputRequest(city="Jakarta"),
            if_match="",
        ),
        428,
    )
    # 429: past the rate limit, with Retry-After. The sign-in before the hour's
    # window, which starts empty: another test of this process may have counted
    # requests from this address in the same clock hour (the cache is the process's).
    limited = client(base, _sign_in(base, privacy_admin.username))
    cache.clear()
    with override_settings(AMANAH_API_RATE="1/hour"):
        op("customers.list_customers").sync(client=limited)
        answer = op("customers.list_customers").sync_detailed(client=limited)
    error(answer.parsed, 429)
    assert int(answer.headers["Retry-After"]) >= 1
