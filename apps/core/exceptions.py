"""The DRF exception handler: domain errors as JSON with field names."""

from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import DomainError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DomainError):
        if exc.field:
            body: dict[str, Any] = {exc.field: [exc.message], "code": exc.code}
        else:
            body = {"detail": exc.message, "code": exc.code}
        return Response(body, status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, ParseError):
        # A body that is not JSON, or nested too deep: the shape of a domain error.
        code = getattr(exc.detail, "code", ParseError.default_code)
        response.data = {"detail": str(exc.detail), "code": code}
    return response
