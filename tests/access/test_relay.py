import json
import time

import pytest
from rest_framework.test import APIClient

from apps.access.models import RelayEvent
from apps.access.services import relay_signature
from tests.access.factories import assign, assign_then_close, assign_then_expire
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db

URL = "/api/v1/contact/relay/"
CUSTOMER_PHONE = "+62 812-3456-7890"
AGENT_PHONE = "+62 21 5091 0000"


def call(
    alias: str, caller: str, *, ts: int | None = None, secret_ok=True, signed=True
):
    body = json.dumps({"alias": alias, "caller": caller}).encode()
    timestamp = str(ts if ts is not None else int(time.time()))
    headers = {}
    if signed:
        signature = relay_signature(timestamp=timestamp, body=body)
        if not secret_ok:
            signature = "0" * 64
        headers = {
            "HTTP_X_AMANAH_TIMESTAMP": timestamp,
            "HTTP_X_AMANAH_SIGNATURE": f"sha256={signature}",
        }
    return APIClient().post(URL, body, content_type="application/json", **headers)


@pytest.fixture
def session(support_agent):
    support_agent.work_phone = AGENT_PHONE
    support_agent.save()
    customer = make_customer(phone=CUSTOMER_PHONE)
    return assign(support_agent, customer), support_agent, customer


def test_the_agent_is_connected_to_the_customer_and_back(session):
    interaction, _, _ = session
    response = call(interaction.contact_alias, "+622150910000")
    assert response.status_code == 200
    assert response.json() == {"destination": "+6281234567890", "caller_party": "staff"}

    response = call(interaction.contact_alias, "0812 3456 7890")
    assert response.status_code == 200
    assert response.json()["caller_party"] == "customer"
    assert RelayEvent.objects.filter(outcome="connected").count() == 2


def test_a_stranger_is_refused_and_logged(session):
    interaction, _, _ = session
    response = call(interaction.contact_alias, "+62 811-0000-0000")
    assert response.status_code == 403
    assert RelayEvent.objects.get().outcome == "refused"


@pytest.mark.parametrize(
    "kwargs",
    [{"signed": False}, {"secret_ok": False}, {"ts": int(time.time()) - 3600}],
    ids=["unsigned", "bad-signature", "stale"],
)
def test_unsigned_wrongly_signed_or_stale_calls_get_401(session, kwargs):
    interaction, _, _ = session
    response = call(interaction.contact_alias, "+622150910000", **kwargs)
    assert response.status_code == 401
    assert "destination" not in response.json()
    assert not RelayEvent.objects.exists()


@pytest.mark.parametrize("end", [assign_then_close, assign_then_expire])
def test_a_closed_or_expired_session_answers_410(support_agent, end):
    support_agent.work_phone = AGENT_PHONE
    support_agent.save()
    interaction = end(support_agent, make_customer(phone=CUSTOMER_PHONE))
    response = call(interaction.contact_alias, "+622150910000")
    assert response.status_code == 410
    assert RelayEvent.objects.get().outcome == "gone"


def test_an_unknown_alias_is_404(session):
    assert call("+15550000000", "+622150910000").status_code == 404


def test_a_tampered_body_fails_the_signature(session):
    interaction, _, _ = session
    timestamp = str(int(time.time()))
    signed = json.dumps({"alias": interaction.contact_alias, "caller": "x"}).encode()
    sent = json.dumps({"alias": interaction.contact_alias, "caller": "+622150910000"})
    response = APIClient().post(
        URL,
        sent,
        content_type="application/json",
        HTTP_X_AMANAH_TIMESTAMP=timestamp,
        HTTP_X_AMANAH_SIGNATURE=relay_signature(timestamp=timestamp, body=signed),
    )
    assert response.status_code == 401
