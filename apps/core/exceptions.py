"""The DRF exception handler: domain errors as JSON with field names."""

import logging
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework.exceptions import ParseError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import DomainError

logger = logging.getLogger(__name__)

# How long a client should wait when the shared cache stays down past its retries.
UNAVAILABLE_RETRY_AFTER = 10


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        if exc.field:
            body: dict[str, Any] = {exc.field: [exc.message], "code": exc.code}
        else:
            body = {"detail": exc.message, "code": exc.code}
        return Response(body, status=exc.status)
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        # The shared cache (throttles, the relay's replay guard) is down for longer
        # than its client retries: nothing was changed; ask the client to come back.
        logger.warning("core.cache_unavailable", extra={"error": type(exc).__name__})
        return Response(
            {
                "detail": "A service Amanah relies on is down; try again shortly.",
                "code": "unavailable",
            },
            status=503,
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
        )
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, ParseError):
        # A body that is not JSON, or nested too deep: the shape of a domain error.
        code = getattr(exc.detail, "code", ParseError.default_code)
        response.data = {"detail": str(exc.detail), "code": code}
    return response
