"""The shared cache rides out a Redis restart, and past its retries the API says 503
(nothing changed, come back) instead of a 500."""

import json
import shutil
import socket
import subprocess
import threading
import time

import pytest
from django.core.cache.backends.redis import RedisCache
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry
from rest_framework.test import APIClient

from apps.access.services import relay_signature
from config.cache import redis_client_options


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """A redis-server of the test's own on a spare port, which it may stop."""

    def __init__(self, binary: str, directory) -> None:
        self.binary, self.directory = binary, directory
        self.port = _free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 - a fixed command line
            [
                self.binary,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def restart(self, *, after: float) -> None:
        """Stop it now (a crash) and start it again `after` seconds from now."""
        self.stop()
        self.timer = threading.Timer(after, self.start)
        self.timer.start()

    def stop(self) -> None:
        timer = getattr(self, "timer", None)
        if timer is not None and timer is not threading.current_thread():
            timer.join()  # a restart still to come must not outlive the test
            self.timer = None
        if self.process is not None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def own_redis(tmp_path):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server on the PATH")
    redis = OwnRedis(binary, tmp_path)
    redis.start()
    yield redis
    redis.stop()


def _cache(port: int, options: dict) -> RedisCache:
    return RedisCache(f"redis://127.0.0.1:{port}/0", {"OPTIONS": options})


def test_a_cache_call_during_a_redis_restart_waits_for_it(own_redis):
    cache = _cache(own_redis.port, redis_client_options())
    assert cache.add("relay:seen:a", 1, 60)
    own_redis.restart(after=1.0)  # down for a second, back empty

    assert cache.add("relay:seen:b", 1, 60)
    assert cache.get("relay:seen:b") == 1


def test_without_the_retries_the_same_call_fails(own_redis):
    cache = _cache(own_redis.port, {})
    cache.set("warm", 1)
    own_redis.restart(after=1.0)
    with pytest.raises(RedisConnectionError):
        cache.add("relay:seen:b", 1, 60)


@pytest.fixture
def cache_down(settings):
    """The shared cache on a port where nothing listens, retried once at once."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_free_port()}/0",
            "OPTIONS": {
                "retry": Retry(NoBackoff(), 1),
                "retry_on_error": [RedisConnectionError],
            },
        }
    }


@pytest.mark.django_db
def test_the_relay_answers_503_while_the_cache_stays_down(cache_down):
    body = json.dumps({"alias": "+15550000000", "caller": "+622150910001"}).encode()
    timestamp = str(int(time.time()))
    response = APIClient().post(
        "/api/v1/contact/relay/",
        body,
        content_type="application/json",
        HTTP_X_AMANAH_TIMESTAMP=timestamp,
        HTTP_X_AMANAH_SIGNATURE=relay_signature(timestamp=timestamp, body=body),
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "10"
    assert response.json() == {
        "status": 503,
        "code": "unavailable",
        "detail": "A service Amanah relies on is down; try again shortly.",
        "errors": [],
    }


@pytest.mark.django_db
def test_the_token_sign_in_answers_503_while_the_cache_stays_down(cache_down):
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "nobody", "password": "x" * 12}
    )
    assert response.status_code == 503
    assert response.json()["code"] == "unavailable"


def test_a_task_queued_during_a_broker_restart_waits_for_it(own_redis, monkeypatch):
    from celery import Celery

    from config.celery import app
    from tests.brokers import CELERY_ENVIRONMENT

    for name in CELERY_ENVIRONMENT:  # Celery prefers them to its configuration
        monkeypatch.delenv(name, raising=False)
    broker = Celery("amanah-restart", set_as_current=False)
    broker.conf.update(
        broker_url=f"redis://127.0.0.1:{own_redis.port}/0",
        task_publish_retry_policy=app.conf.task_publish_retry_policy,
        broker_connection_retry_on_startup=True,
    )
    with broker.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1)
    own_redis.restart(after=1.0)

    broker.send_task("amanah.test.noop", queue="restart-test")

    with broker.connection_for_read() as connection:
        assert connection.as_uri().endswith(f":{own_redis.port}/0")
        queued = connection.default_channel.client.llen("restart-test")
    assert queued == 1


@pytest.mark.django_db
def test_api_reads_go_on_uncounted_while_the_cache_stays_down(
    cache_down, privacy_admin, caplog
):
    # The per-token rate limit protects the API; it does not take it down with Redis.
    from apps.accounts.throttling import ApiRateThrottle

    client = APIClient()
    client.force_authenticate(privacy_admin)
    try:
        response = client.get("/api/v1/customers/")
        assert response.status_code == 200
        assert "RateLimit-Limit" not in response
        assert caplog.messages.count("accounts.rate_limit_uncounted") == 1
        # The next calls do not wait for the cache again: they go on at once.
        assert client.get("/api/v1/customers/").status_code == 200
        assert caplog.messages.count("accounts.rate_limit_uncounted") == 1
    finally:
        ApiRateThrottle.uncounted_until = 0.0
