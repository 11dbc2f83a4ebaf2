"""The shared cache's client options: ride out a Redis restart instead of failing the
requests that arrive while it is down (a throttle, the relay's replay guard)."""

from typing import Any

from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"


def redis_client_options() -> dict[str, Any]:
    """Retry a command that meets a refused or dropped connection for about five
    seconds (0.1, 0.2, 0.4, 0.8 s, then every second), which covers a restart; then
    raise, and the API answers 503 (apps.core.exceptions)."""
    return {
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), 8),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        "socket_connect_timeout": 1,
        "socket_timeout": 2,
    }
