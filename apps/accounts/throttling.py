"""The API's rate limits, counted in the shared cache (CACHES) so that every web
process counts the same requests.

- `ApiRateThrottle`: every operation, per token (a browser session per user, a
  request with neither per client address), `AMANAH_API_RATE` requests per window.
  Its count rides on the request (`request.rate_limit`) and `apps.core.api.ApiView`
  answers with `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset`.
- `ClientAddressThrottle`: DRF's per-scope rates, per client address as every other
  reader sees it (`apps.accounts.network.client_address`): token sign-in.
"""

import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

from apps.accounts.network import client_address

logger = logging.getLogger(__name__)

# After the shared cache failed a call, how long this process lets API calls through
# uncounted before asking the cache again.
UNCOUNTED_SECONDS = 10


@dataclass(frozen=True)
class RateLimit:
    limit: int
    remaining: int
    reset: int  # seconds until the window ends

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset),
        }


def rate_ident(request: Request) -> str:
    token_pk = getattr(request.auth, "pk", None)
    if token_pk is not None:
        return f"token:{token_pk}"
    if request.user is not None and request.user.is_authenticated:
        return f"user:{request.user.pk}"
    return f"address:{client_address(request)}"


class ApiRateThrottle(SimpleRateThrottle):
    """A fixed window per client: one atomic increment in the shared cache per
    request (Redis INCR), so concurrent requests in many processes never undercount
    (DRF's own throttles read, append and write back a list: two processes at once
    each count one)."""

    # Until when (time.monotonic) this process counts nothing: the cache was down.
    # One call waits through the cache client's retries; the ones after it in the
    # next seconds do not wait again.
    uncounted_until = 0.0

    def __init__(self) -> None:
        """No scope and no rate at construction: AMANAH_API_RATE is read at each
        request (DRF's `parse_rate` reads it)."""

    def allow_request(self, request: Request, view: object) -> bool:
        if time.monotonic() < ApiRateThrottle.uncounted_until:
            return True
        limit, window = self.parse_rate(settings.AMANAH_API_RATE)
        if limit is None or window is None:
            return True  # no rate set: no limit
        now = time.time()
        start = int(now // window) * window
        key = f"ratelimit:{rate_ident(request)}:{start}"
        try:
            cache.add(key, 0, timeout=window + 1)
            try:
                count = cache.incr(key)
            except ValueError:  # expired between add and incr: a new window
                cache.add(key, 1, timeout=window + 1)
                count = 1
        except (RedisConnectionError, RedisTimeoutError) as exc:
            # The shared cache is down past its retries: the limit protects the API,
            # it is not what the API is for. Let the call through, uncounted (the
            # token sign-in's own throttle and the relay's replay guard still refuse
            # with 503: they guard against guessing and replays).
            logger.warning(
                "accounts.rate_limit_uncounted", extra={"error": type(exc).__name__}
            )
            ApiRateThrottle.uncounted_until = time.monotonic() + UNCOUNTED_SECONDS
            return True
        reset = max(1, math.ceil(start + window - now))
        request.rate_limit = RateLimit(  # type: ignore[attr-defined]
            limit=limit, remaining=max(0, limit - count), reset=reset
        )
        self._wait = reset
        return count <= limit

    def wait(self) -> float:
        return self._wait


class ClientAddressThrottle(ScopedRateThrottle):
    def get_ident(self, request: Request) -> str:
        return client_address(request)
