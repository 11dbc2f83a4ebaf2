"""The token sign-in throttle (AMANAH_TOKEN_RATE) counts per client, in the cache every
web process shares, and a client cannot dodge it with a made-up X-Forwarded-For."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from unittest import mock

import pytest
import redis
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from tests.redis import REDIS, redis_answers

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "/api/v1/auth/token/"
PROXY = "10.0.0.2"


@pytest.fixture
def three_a_minute():
    cache.clear()
    with mock.patch.object(SimpleRateThrottle, "THROTTLE_RATES", {"token": "3/minute"}):
        yield
    cache.clear()


def _statuses(client: APIClient, times: int) -> list[int]:
    # An empty body is refused (400) before any password check: only the throttle
    # counts.
    return [client.post(TOKEN, {}).status_code for _ in range(times)]


def test_the_throttle_answers_429_with_retry_after(three_a_minute):
    client = APIClient(REMOTE_ADDR="203.0.113.5")
    assert _statuses(client, 3) == [400, 400, 400]
    response = client.post(TOKEN, {})
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    assert "throttled" in response.json()["detail"]


def test_a_made_up_x_forwarded_for_does_not_dodge_the_throttle(three_a_minute):
    client = APIClient(REMOTE_ADDR="203.0.113.5")
    statuses = []
    for n in range(4):
        client.defaults["HTTP_X_FORWARDED_FOR"] = f"192.0.2.{n}"
        statuses.append(client.post(TOKEN, {}).status_code)
    assert statuses == [400, 400, 400, 429]


def test_behind_the_proxy_each_client_has_its_own_budget(three_a_minute, settings):
    settings.AMANAH_PROXY_COUNT = 1
    first = APIClient(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.5")
    assert _statuses(first, 4) == [400, 400, 400, 429]

    second = APIClient(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="203.0.113.6")
    assert _statuses(second, 1) == [400]

    spoofing = APIClient(
        REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="192.0.2.1, 203.0.113.5"
    )
    assert _statuses(spoofing, 1) == [429]


# Two web processes: each its own interpreter, sharing only CACHE_URL.

_WEB_PROCESS = """
import json, sys
import django
django.setup()
from django.conf import settings
settings.CACHES["default"]["KEY_PREFIX"] = sys.argv[1]
from django.test import Client
client = Client(REMOTE_ADDR="203.0.113.5", HTTP_HOST="localhost")
answers = []
for _ in range(int(sys.argv[2])):
    response = client.post("/api/v1/auth/token/", {}, content_type="application/json")
    answers.append([response.status_code, response.get("Retry-After")])
print(json.dumps(answers))
"""


@pytest.fixture
def shared_cache_url():
    """A Redis database of this test's own, under a prefix of its own, emptied after."""
    if not redis_answers():
        pytest.skip("no Redis on 127.0.0.1:6379")
    location = f"redis://{REDIS[0]}:{REDIS[1]}/14"
    prefix = f"test-throttle-{uuid.uuid4().hex}"
    yield location, prefix
    client = redis.Redis.from_url(location)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
    client.close()


def _web_process(location: str, prefix: str, requests: int) -> list[list]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DJANGO_DEBUG": "1",
        "CACHE_URL": location,
        "AMANAH_TOKEN_RATE": "3/hour",  # no window ends during a slow run
        # The throttle refuses before any query; no process here needs a database.
        "DATABASE_URL": "sqlite:///:memory:",
    }
    result = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", _WEB_PROCESS, prefix, str(requests)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_throttle_holds_across_two_web_processes(shared_cache_url):
    location, prefix = shared_cache_url
    first = _web_process(location, prefix, 3)
    assert [status for status, _ in first] == [400, 400, 400], first

    second = _web_process(location, prefix, 2)
    assert [status for status, _ in second] == [429, 429], second
    assert all(0 < int(retry_after) <= 3600 for _, retry_after in second)


# The per-token API rate (AMANAH_API_RATE): every operation, one atomic count in the
# shared cache, so concurrent processes never let more through than the limit.

_API_PROCESS = """
import json, sys
import django
django.setup()
from django.conf import settings
settings.CACHES["default"]["KEY_PREFIX"] = sys.argv[1]
from django.test import Client
client = Client(REMOTE_ADDR="203.0.113.9", HTTP_HOST="localhost")
answers = []
for _ in range(int(sys.argv[2])):
    # The relay's webhook takes no credentials: counted per address; unsigned, 401.
    response = client.post(
        "/api/v1/contact/relay/", {}, content_type="application/json"
    )
    answers.append([response.status_code, response.get("RateLimit-Remaining")])
print(json.dumps(answers))
"""


def test_the_api_rate_holds_across_concurrent_web_processes(shared_cache_url):
    location, prefix = shared_cache_url
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "DJANGO_DEBUG": "1",
        "CACHE_URL": location,
        "AMANAH_API_RATE": "10/hour",
        "DATABASE_URL": "sqlite:///:memory:",
        "AMANAH_RELAY_SECRET": "x" * 32,
    }
    runs = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", _API_PROCESS, prefix, "8"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    answers = []
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        answers += json.loads(out.strip().splitlines()[-1])
    statuses = [status for status, _ in answers]
    # 24 requests from three processes at once: exactly the 10 allowed got through.
    assert statuses.count(401) == 10, statuses
    assert statuses.count(429) == 14, statuses
    remaining = sorted(int(left) for status, left in answers if status == 401)
    assert remaining == list(range(10)), remaining
