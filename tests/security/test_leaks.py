"""The canary customer's PII must not appear where it does not belong.

The canary (tests/customers/factories.py) goes through a working life: agents assigned,
a reveal, staff reads, consent changes (one awaiting double opt-in), a privacy notice,
a breach notice, an access request (its text holding the canary's email and phone), a
relayed call. Then none of its values may be found in a `pg_dump` of the whole database,
in audit details, in the Celery messages waiting in Redis, or in the HTML of any page
shown to someone whose role may not see that field. Log lines are scanned for the whole
run by tests/conftest.py.
"""

import base64
import json
import shutil
import subprocess
import uuid
from functools import partial

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from apps.access.models import Visibility
from apps.access.selectors import policy_cell, policy_matrix
from apps.access.services import (
    customers_read,
    interaction_close,
    relay_route,
    reveal_open,
)
from apps.accounts.models import Role
from apps.audit.models import AuditEvent
from apps.consent.models import ConsentSource, NoticeChange, PrivacyNotice, Purpose
from apps.consent.services import consent_apply_gpc, consent_grant, notice_publish
from apps.customers.registry import PII_BY_NAME
from apps.incidents.services import affected_select, incident_notify
from apps.requests.models import DataRequest
from apps.requests.services import request_open
from tests.access.factories import assign
from tests.accounts.helpers import sign_in
from tests.consent.factories import reseed_purposes
from tests.customers.factories import CANARY
from tests.incidents.factories import make_incident
from tests.redis import redis_answers
from tests.security.conftest import World, build_world

REDIS_URL = "redis://127.0.0.1:6379/15"  # a database of the test suite's own

# Each canary value and the field it belongs to.
CANARY_FIELDS = {
    "full_name": "full_name",
    "email": "email",
    "phone": "phone",
    "phone_e164": "phone",
    "national_id": "national_id",
    "address_line": "address_line",
}


# What the canary writes on their request: their own contact details.
CANARY_DETAILS = (
    f"Please send the copy to {CANARY['email']} or call {CANARY['phone']} first."
)
# Fields the canary's request page shows in full to the privacy admin handling it: the
# text the canary wrote (the read is in the access log).
CANARY_DETAILS_FIELDS = frozenset({"email", "phone"})


def assert_no_canary(text: str, *, where: str, allowed: frozenset[str] = frozenset()):
    for key, value in CANARY.items():
        if CANARY_FIELDS[key] in allowed:
            continue
        # pytest.fail, not assert: pytest's assertion report would print the value
        # and the page around it, the very leak being reported.
        if value in text or value.lower() in text.lower():
            pytest.fail(f"canary {key} in {where}", pytrace=False)


def canary_lifecycle(world: World, *, execute) -> dict:
    """The canary's working life through the services, inside `execute()`, which
    runs the on-commit callbacks (tasks, emails) as a commit would."""
    admin = world.users[Role.PRIVACY_ADMIN]
    support = world.users[Role.SUPPORT_AGENT]
    delivery = world.users[Role.DELIVERY_AGENT]
    canary = world.canary
    with execute():
        case = assign(support, canary)
        assign(delivery, canary)
        reveal_open(
            actor=support,
            customer=canary,
            fields=["email", "phone"],
            reason="Customer called about a missed delivery",
        )
        customers_read(actor=world.users[Role.COMPLIANCE_OFFICER], customers=[canary])
        consent_grant(
            actor=support,
            customer=canary,
            purpose_code="marketing_sms",
            source=ConsentSource.STAFF,
            reason="Asked on the phone to get offers",
        )
        # Double opt-in: a confirmation email goes to the canary's address.
        consent_grant(
            actor=None,
            customer=canary,
            purpose_code="marketing_email",
            source=ConsentSource.SELF_SERVICE,
        )
        consent_apply_gpc(customer=canary, evidence="Sec-GPC: 1")
        relay_route(alias=case.contact_alias, caller=CANARY["phone"])
        request = request_open(
            actor=admin,
            customer=canary,
            kind="access",
            verification="Checked the national id card at the desk",
            # The customer's own words, sealed under their key like their record.
            details=CANARY_DETAILS,
        )
        incident = make_incident(admin)
        affected_select(
            actor=admin, incident=incident, scope="list", customer_ids=str(canary.pk)
        )
        incident_notify(actor=admin, incident=incident)
        notice = PrivacyNotice.objects.create(
            version=PrivacyNotice.objects.count() + 2,
            title="Privacy notice",
            summary="Text messages now come from a new provider.",
            body="...",
            effective_at=timezone.now(),
        )
        NoticeChange.objects.create(
            notice=notice,
            purpose=Purpose.objects.get(code="marketing_sms"),
            material=False,
            description="A new text message provider.",
        )
        notice_publish(actor=admin, notice=notice)
    return {"incident": incident, "request": request, "notice": notice}


# pg_dump


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_dump_of_the_whole_database_holds_no_plaintext_pii(
    django_capture_on_commit_callbacks,
):
    if shutil.which("pg_dump") is None:
        pytest.skip("pg_dump is not installed")
    reseed_purposes()  # a transactional test may start after another one's flush
    world = build_world()
    canary_lifecycle(
        world, execute=partial(django_capture_on_commit_callbacks, execute=True)
    )
    assert DataRequest.objects.get(customer=world.canary).status != "received"
    db = connection.settings_dict
    dump = subprocess.run(  # noqa: S603 - fixed arguments, our own test database
        [
            shutil.which("pg_dump"),
            "--data-only",
            "-h",
            db["HOST"] or "127.0.0.1",
            "-p",
            str(db["PORT"] or 5432),
            "-U",
            db["USER"] or "postgres",
            db["NAME"],
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert str(world.canary.pk) in dump  # the rows are in the dump...
    assert_no_canary(dump, where="pg_dump")  # ...but none of the PII in plain text


# Audit details


def test_audit_details_hold_no_canary_pii(world, django_capture_on_commit_callbacks):
    canary_lifecycle(
        world, execute=partial(django_capture_on_commit_callbacks, execute=True)
    )
    details = json.dumps([e.details for e in AuditEvent.objects.all()])
    assert str(world.canary.pk) in details
    assert_no_canary(details, where="audit details")


# Celery messages in Redis


@pytest.fixture
def redis_queue(settings, monkeypatch):
    """The code's `.delay()` calls go to a queue of this test's own on Redis DB 15,
    with no worker: the messages stay there to be read, then only they are deleted."""
    if not redis_answers():
        pytest.skip("no Redis on 127.0.0.1:6379")
    # Celery prefers these variables to its configuration (CI exports the first).
    for name in (
        "CELERY_BROKER_URL",
        "CELERY_BROKER_READ_URL",
        "CELERY_BROKER_WRITE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    import redis
    from celery import Celery

    from config.celery import app

    queue = f"amanah-leak-scan-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_ALWAYS_EAGER = False
    broker_app = Celery("amanah-leak-scan", set_as_current=False)
    broker_app.config_from_object("django.conf:settings", namespace="CELERY")
    broker_app.conf.update(
        broker_url=REDIS_URL, task_always_eager=False, task_default_queue=queue
    )
    broker_app.set_current()
    client = redis.Redis.from_url(REDIS_URL)
    try:
        yield client, queue
    finally:
        app.set_current()
        broker_app.close()
        client.delete(queue)
        for key in client.scan_iter(match=f"*{queue}*"):
            client.delete(key)
        client.close()


@pytest.mark.postgres
def test_celery_messages_in_redis_hold_no_canary_pii(
    world, redis_queue, django_capture_on_commit_callbacks
):
    from apps.consent.tasks import notice_announce_task
    from apps.incidents.tasks import notices_send_task

    client, queue = redis_queue
    made = canary_lifecycle(
        world, execute=partial(django_capture_on_commit_callbacks, execute=True)
    )
    # What a worker would do with the first messages: each queues the next ones.
    notice_announce_task(made["notice"].pk)
    with django_capture_on_commit_callbacks(execute=True):
        notices_send_task(str(made["incident"].pk))

    raw = client.lrange(queue, 0, -1)
    messages = [json.loads(m) for m in raw]
    tasks = {m["headers"]["task"] for m in messages}
    assert {
        "requests.process",
        "incidents.send_notices",
        "consent.notice_announce",
        "consent.notice_announce_batch",
    } <= tasks, tasks
    decoded = "\n".join(
        m["body"]
        if m["properties"].get("body_encoding") != "base64"
        # The task's arguments, as a worker reads them.
        else base64.b64decode(m["body"]).decode()
        for m in messages
    )
    assert str(world.canary.pk) in decoded  # the messages are about the canary...
    everything = b"\n".join(raw).decode() + decoded
    assert_no_canary(everything, where="Celery messages")  # ...by id only


# HTML


def allowed_fields(role: str, *, revealed: frozenset[str] = frozenset()) -> frozenset:
    """The canary fields a role sees in full on the staff customer page."""
    matrix = policy_matrix()
    return frozenset(
        name
        for name in set(CANARY_FIELDS.values())
        if name in revealed
        or policy_cell(matrix, role, PII_BY_NAME[name].category).visibility
        == Visibility.FULL
    )


@pytest.fixture
def lived_canary(world, django_capture_on_commit_callbacks) -> tuple[World, dict]:
    return world, canary_lifecycle(
        world, execute=partial(django_capture_on_commit_callbacks, execute=True)
    )


def page(user, path: str) -> tuple[int, str]:
    client = Client()
    sign_in(client, user)
    response = client.get(path, follow=True, HTTP_HOST="127.0.0.1")
    assert not response.redirect_chain, (path, response.redirect_chain)
    return response.status_code, response.content.decode()


@pytest.mark.parametrize(
    "role",
    [
        Role.SUPPORT_AGENT,
        Role.DELIVERY_AGENT,
        Role.COMPLIANCE_OFFICER,
        Role.PRIVACY_ADMIN,
    ],
)
def test_the_staff_customer_page_shows_only_what_the_role_may_see(lived_canary, role):
    world, _ = lived_canary
    # The support agent revealed email and phone: those show in full, for them only.
    revealed = (
        frozenset({"email", "phone"}) if role == Role.SUPPORT_AGENT else frozenset()
    )
    allowed = allowed_fields(role, revealed=revealed)
    status, html = page(world.users[role], f"/staff/customers/{world.canary.pk}/")
    assert status == 200
    assert_no_canary(html, where=f"the staff customer page as {role}", allowed=allowed)
    # The page does show what the role may see: the scan looks at the real page.
    for field in allowed:  # the phone is stored, and shown, as E.164
        values = [v for k, v in CANARY.items() if CANARY_FIELDS[k] == field]
        assert any(v in html for v in values), field


def test_a_reveal_does_not_outlive_its_case_into_the_next(world):
    """A support agent reveals the canary's email and phone, closes the case and opens
    another within the reveal's minutes: neither the page nor the API shows them."""
    support, canary = world.users[Role.SUPPORT_AGENT], world.canary
    case = assign(support, canary)
    reveal_open(
        actor=support,
        customer=canary,
        fields=["email", "phone"],
        reason="Customer called about a missed delivery",
    )
    interaction_close(actor=support, interaction=case)
    assign(support, canary)
    allowed = allowed_fields(Role.SUPPORT_AGENT)

    status, html = page(support, f"/staff/customers/{canary.pk}/")
    assert status == 200
    assert_no_canary(html, where="the page of the new case", allowed=allowed)
    api = APIClient()
    api.force_authenticate(support)
    response = api.get(f"/api/v1/customers/{canary.pk}/")
    assert response.status_code == 200
    assert_no_canary(
        response.content.decode(), where="the API on the new case", allowed=allowed
    )


def test_pages_of_roles_that_may_not_see_the_canary_show_none_of_it(lived_canary):
    world, made = lived_canary
    compliance = world.users[Role.COMPLIANCE_OFFICER]
    admin = world.users[Role.PRIVACY_ADMIN]
    delivery = world.users[Role.DELIVERY_AGENT]
    support = world.users[Role.SUPPORT_AGENT]
    canary = world.canary
    # An agent not assigned to the canary, and a customer who is someone else.
    stranger = build_stranger_agent()
    pages = [
        (stranger, f"/staff/customers/{canary.pk}/"),
        (stranger, "/staff/"),
        (world.users[Role.CUSTOMER], f"/staff/customers/{canary.pk}/"),
        (world.users[Role.CUSTOMER], "/me/"),
        (world.users[Role.CUSTOMER], "/me/data/"),
        (world.users[Role.CUSTOMER], "/me/notices/"),
        (compliance, "/staff/"),
        (compliance, "/staff/oversight/"),
        (compliance, f"/staff/customers/{canary.pk}/"),
        (compliance, "/compliance/audit/"),
        (compliance, f"/compliance/audit/?target_id={canary.pk}"),
        (compliance, "/compliance/"),
        (compliance, "/compliance/retention/"),
        (compliance, "/compliance/incidents/"),
        (compliance, f"/compliance/incidents/{made['incident'].pk}/"),
        (admin, "/compliance/requests/"),
        (admin, f"/compliance/requests/{made['request'].pk}/"),
        (admin, "/compliance/inventory/"),
        (admin, "/staff/policy/"),
        (admin, f"/admin/customers/customer/{canary.pk}/change/"),
        (admin, "/admin/customers/customer/"),
        (admin, "/admin/audit/auditevent/"),
        (admin, "/admin/consent/consentevent/"),
        # An agent's desk lists their cases: the name, and for a delivery the
        # drop-off address (what the role sees in full), nothing more.
        (delivery, "/staff/"),
        (support, "/staff/"),
    ]
    for user, path in pages:
        status, html = page(user, path)
        expected = 404 if user == stranger and "customers" in path else 200
        if user.role == Role.CUSTOMER and path.startswith("/staff/"):
            expected = 403
        assert status == expected, (path, user.role, status)
        allowed = (
            allowed_fields(user.role) & DESK_FIELDS
            if user in (delivery, support)
            else frozenset()
        )
        if path == f"/compliance/requests/{made['request'].pk}/":
            allowed = CANARY_DETAILS_FIELDS
        assert_no_canary(html, where=f"{path} as {user.role}", allowed=allowed)
    for path in ("/privacy/", "/status/", "/accounts/login/", "/me/login/"):
        response = Client().get(path, follow=True, HTTP_HOST="127.0.0.1")
        assert_no_canary(response.content.decode(), where=f"{path}, signed out")


# What a desk row may show of a customer, where the role sees it in full
# (apps/access/views.py DESK_CATEGORIES: identity and address).
DESK_FIELDS = {"full_name", "address_line", "city", "postal_code"}


def build_stranger_agent():
    from tests.accounts.factories import UserFactory

    return UserFactory(username="sec-stranger", role=Role.SUPPORT_AGENT)
