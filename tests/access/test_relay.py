import json
import time
import uuid

import pytest
import redis
from django.core.cache import caches
from rest_framework.test import APIClient

from apps.access.errors import RelayUnauthorized
from apps.access.models import RelayEvent
from apps.access.services import relay_signature, relay_verify
from tests.access.factories import assign, assign_then_close, assign_then_expire
from tests.customers.factories import make_customer
from tests.redis import REDIS, redis_answers

pytestmark = pytest.mark.django_db

URL = "/api/v1/contact/relay/"
CUSTOMER_PHONE = "+62 812-3456-7890"
AGENT_PHONE = "+62 21 5091 0000"


@pytest.fixture(autouse=True)
def own_cache(settings):
    """A cache of this test's own: the replay guard remembers every signed request."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"relay-{uuid.uuid4()}",
        }
    }


def signed(body: bytes, *, ts: int | None = None) -> dict[str, str]:
    timestamp = str(ts if ts is not None else int(time.time()))
    return {
        "HTTP_X_AMANAH_TIMESTAMP": timestamp,
        "HTTP_X_AMANAH_SIGNATURE": "sha256="
        + relay_signature(timestamp=timestamp, body=body),
    }


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
    return send(body, headers)


def send(body: bytes | str, headers: dict[str, str]):
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
    [
        {"signed": False},
        {"secret_ok": False},
        {"offset": -3600},
        {"offset": 120},
    ],
    ids=["unsigned", "bad-signature", "stale", "future"],
)
def test_unsigned_wrongly_signed_or_stale_calls_get_401(session, kwargs):
    interaction, _, _ = session
    if "offset" in kwargs:  # from now, not from when the tests were collected
        kwargs = {"ts": int(time.time()) + kwargs["offset"]}
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


def test_a_replayed_request_is_refused(session):
    interaction, _, _ = session
    body = json.dumps({"alias": interaction.contact_alias, "caller": "+622150910000"})
    headers = signed(body.encode())
    assert send(body, headers).status_code == 200

    replay = send(body, headers)
    assert replay.status_code == 401
    assert replay.json() == {
        "status": 401,
        "code": "relay_replayed",
        "detail": "This request was already used.",
        "errors": [],
    }
    assert RelayEvent.objects.count() == 1


def test_a_request_the_cache_stored_before_a_lost_reply_is_not_a_replay(
    session, monkeypatch
):
    """A Redis restart: the client's `add` landed, its reply was lost, and the retry
    found the key taken. The key holds this request's own value: it goes through."""
    from apps.access.services import relay as services

    class LostReply:
        def __init__(self, real):
            self.real = real

        def add(self, key, value, timeout=None):
            self.real.add(key, value, timeout)
            return False

        def __getattr__(self, name):
            return getattr(self.real, name)

    monkeypatch.setattr(services, "cache", LostReply(caches["default"]))
    interaction, _, _ = session
    assert call(interaction.contact_alias, "+622150910000").status_code == 200


def test_two_calls_in_one_second_differ_by_the_providers_call_id(session):
    interaction, _, _ = session
    timestamp = int(time.time())
    for call_id in ("CA1", "CA2"):
        body = json.dumps(
            {
                "alias": interaction.contact_alias,
                "caller": "+622150910000",
                "call_id": call_id,
            }
        )
        assert send(body, signed(body.encode(), ts=timestamp)).status_code == 200
    assert RelayEvent.objects.filter(outcome="connected").count() == 2


def test_garbage_with_a_real_timestamp_does_not_burn_the_real_request(session):
    interaction, _, _ = session
    body = json.dumps({"alias": interaction.contact_alias, "caller": "+622150910000"})
    headers = signed(body.encode())
    forged = {**headers, "HTTP_X_AMANAH_SIGNATURE": "sha256=" + "0" * 64}
    assert send(body, forged).status_code == 401
    assert send(body, forged).status_code == 401
    assert send(body, headers).status_code == 200


def test_a_timestamp_in_the_future_beyond_the_skew_is_refused(session, settings):
    settings.AMANAH_RELAY_FUTURE_SKEW_SECONDS = 30
    interaction, _, _ = session
    response = call(
        interaction.contact_alias, "+622150910000", ts=int(time.time()) + 90
    )
    assert response.status_code == 401
    assert response.json() == {
        "status": 401,
        "code": "relay_unauthorized",
        "detail": "Timestamp in the future.",
        "errors": [],
    }
    assert not RelayEvent.objects.exists()


@pytest.mark.parametrize("offset", [10, -240], ids=["clock-ahead", "in-flight"])
def test_small_clock_skew_and_recent_requests_are_accepted(session, offset):
    interaction, _, _ = session
    response = call(
        interaction.contact_alias, "+622150910000", ts=int(time.time()) + offset
    )
    assert response.status_code == 200


def test_a_signed_body_that_is_not_json_is_400(session):
    body = b"alias=+15550000000"
    response = send(body, signed(body))
    assert response.status_code == 400
    assert response.json() == {
        "status": 400,
        "code": "parse_error",
        "detail": "The body must be JSON.",
        "errors": [],
    }


def test_a_signed_body_nested_100000_deep_is_400(session, settings):
    settings.DEBUG = False
    body = ("[" * 100_000 + "]" * 100_000).encode()
    response = APIClient(raise_request_exception=False).post(
        URL, body, content_type="application/json", **signed(body)
    )
    assert response.status_code == 400
    assert response.json() == {
        "status": 400,
        "code": "too_deep",
        "detail": "JSON nested deeper than 64 levels.",
        "errors": [],
    }
    assert not RelayEvent.objects.exists()


@pytest.fixture
def shared_redis_cache(settings):
    """The default cache on a Redis db of the tests' own, under a prefix of this test's
    own (parallel runs share the db), emptied afterwards."""
    if not redis_answers():
        pytest.skip("no Redis on 127.0.0.1:6379")
    prefix = f"test-relay-{uuid.uuid4().hex}"
    location = f"redis://{REDIS[0]}:{REDIS[1]}/13"
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": prefix,
        }
    }
    yield settings
    client = redis.Redis.from_url(location)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def test_a_replay_is_refused_by_another_process_sharing_the_cache(shared_redis_cache):
    body = b'{"alias": "+15550000000", "caller": "+622150910000"}'
    headers = signed(body)
    timestamp = headers["HTTP_X_AMANAH_TIMESTAMP"]
    signature = headers["HTTP_X_AMANAH_SIGNATURE"]
    first_client = caches["default"]
    relay_verify(timestamp=timestamp, signature=signature, body=body)

    # Another web process: a new cache client with nothing in its own memory.
    shared_redis_cache.CACHES = {"default": dict(shared_redis_cache.CACHES["default"])}
    assert caches["default"] is not first_client
    with pytest.raises(RelayUnauthorized, match="already used") as refused:
        relay_verify(timestamp=timestamp, signature=signature, body=body)
    assert refused.value.code == "relay_replayed"
