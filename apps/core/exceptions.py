"""The API's one error envelope, for every error an API caller can meet.

    {"status": 400, "code": "invalid", "detail": "A sentence for a person.",
     "errors": [{"field": "purpose", "code": "invalid", "message": "Unknown purpose."}]}

`errors` names each field at fault (`field` is null for an error of the whole body;
nested fields are dotted: `customer_ids.3`); it is empty when no field is. DRF's
exception handler and Django's own 400/403/404/500 pages under /api/ both answer with
it (apps.core.api_errors), so a client parses one shape.
"""

import logging
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import DomainError

logger = logging.getLogger(__name__)

# How long a client should wait when the shared cache stays down past its retries.
UNAVAILABLE_RETRY_AFTER = 10


def error_body(
    *, status: int, code: str, detail: str, errors: list[dict] | None = None
) -> dict[str, Any]:
    return {"status": status, "code": code, "detail": detail, "errors": errors or []}


def _flatten(detail: Any, path: str | None) -> Iterator[dict[str, Any]]:
    """Each message of a serializer's error tree, with the dotted path to its field."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            key = str(key)
            name = None if key == api_settings.NON_FIELD_ERRORS_KEY else key
            yield from _flatten(
                value, f"{path}.{name}" if path and name else name or path
            )
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            # A list of messages for one field, or one entry per item of a list field.
            nested = isinstance(value, dict | list)
            yield from _flatten(value, f"{path}.{index}" if nested and path else path)
    else:
        yield {
            "field": path,
            "code": getattr(detail, "code", None) or "invalid",
            "message": str(detail),
        }


def validation_body(detail: Any, *, status: int = 400) -> dict[str, Any]:
    errors = list(_flatten(detail, None))
    if len(errors) == 1:
        sentence = errors[0]["message"]
        if errors[0]["field"]:
            sentence = f"{errors[0]['field']}: {sentence}"
    else:
        sentence = f"{len(errors)} problems with the request; see errors."
    codes = {error["code"] for error in errors}
    code = codes.pop() if len(codes) == 1 else "invalid"
    return error_body(status=status, code=code, detail=sentence, errors=errors)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        errors = (
            [{"field": exc.field, "code": exc.code, "message": exc.message}]
            if exc.field
            else []
        )
        body = error_body(
            status=exc.status, code=exc.code, detail=exc.message, errors=errors
        )
        # An error may carry headers of its own (a 409 saying when to retry).
        return Response(body, status=exc.status, headers=getattr(exc, "headers", None))
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        # The shared cache (throttles, the relay's replay guard) is down for longer
        # than its client retries: nothing was changed; ask the client to come back.
        logger.warning("core.cache_unavailable", extra={"error": type(exc).__name__})
        return Response(
            error_body(
                status=503,
                code="unavailable",
                detail="A service Amanah relies on is down; try again shortly.",
            ),
            status=503,
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
        )
    # DRF's own conversions, done here so that the shaping below sees DRF's types.
    if isinstance(exc, Http404):
        exc = drf.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a 500: Django's handler500 answers it (apps.core.api_errors)
    if isinstance(exc, drf.ValidationError):
        response.data = validation_body(exc.detail, status=response.status_code)
    elif isinstance(exc, drf.APIException):
        detail = exc.detail
        code = getattr(detail, "code", None) or exc.default_code
        if isinstance(detail, dict | list):
            body = validation_body(detail, status=response.status_code)
            body["code"] = code if isinstance(code, str) else body["code"]
            response.data = body
        else:
            response.data = error_body(
                status=response.status_code, code=str(code), detail=str(detail)
            )
    return response
