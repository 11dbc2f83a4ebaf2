"""OpenAPI schema generation (drf-spectacular) for the API's contract (apps.core.api).

Each operation declares what generated clients need to trust it: a named operation id,
a JSON request body only, its query parameters, the error envelope for each status it
can answer with, the headers of safe retries and rate limits, and the token scope it
needs.
"""

from typing import Any, Literal

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from apps.core.api import IDEMPOTENCY_HEADER, SAFE_METHODS, ApiView, scopes_text


class ErrorFieldSerializer(serializers.Serializer):
    field = serializers.CharField(
        allow_null=True,
        help_text="The field at fault, dotted into nested ones (`customer_ids.3`); "
        "null for the body as a whole.",
    )
    code = serializers.CharField(help_text="A stable code for programs.")
    message = serializers.CharField(help_text="A sentence for a person.")


class ErrorSerializer(serializers.Serializer):
    """Every error of the API, whatever its status (apps.core.exceptions)."""

    status = serializers.IntegerField(help_text="The HTTP status, repeated.")
    code = serializers.CharField(
        help_text="A stable code for programs: `invalid`, `not_found`, `scope`, "
        "`throttled`, `stale`, `idempotency_key_reused`, ..."
    )
    detail = serializers.CharField(help_text="A sentence for a person.")
    # DRF's metaclass takes declared fields out of the class: this is the envelope's
    # "errors" key, not Serializer.errors.
    errors = ErrorFieldSerializer(many=True)  # type: ignore[assignment]


# Statuses any operation can answer with, and what each means.
ERRORS = {
    400: "The request is not valid: a field, a query parameter or the body "
    "(see `errors`).",
    401: "No credentials, or credentials that are not valid (expired, revoked).",
    403: "The role or the token's scope does not allow this.",
    404: "No such object, or one the caller may not see.",
    409: "Conflicts with the object's state, or a request with the same "
    "Idempotency-Key is still running (see Retry-After).",
    412: "If-Match names a version that is no longer current: read it again.",
    415: "The body is not JSON.",
    422: "This Idempotency-Key was used with another request.",
    428: "If-Match is required: send the ETag of the version you change.",
    429: "Too many requests: see Retry-After.",
    500: "Something went wrong on our side.",
    503: "A service Amanah relies on is down: see Retry-After.",
}

RATE_HEADERS = {
    "RateLimit-Limit": "Requests allowed per window for this token.",
    "RateLimit-Remaining": "Requests left in this window.",
    "RateLimit-Reset": "Seconds until the window ends.",
}


def _header(description: str, kind: str = "integer") -> dict[str, Any]:
    return {"schema": {"type": kind}, "description": description}


class AutoSchema(SpectacularAutoSchema):
    """Names a serializer nested in an API view after that view.

    Every API view has its own `InputSerializer` and `OutputSerializer` (STYLE.md);
    named by class alone they would all collide as "Input" and "Output" components.
    """

    def get_serializer_name(
        self, serializer: Any, direction: Literal["request", "response"]
    ) -> str:
        cls = serializer if isinstance(serializer, type) else type(serializer)
        parts = cls.__qualname__.split(".")
        if len(parts) > 1:
            return "".join(part.removesuffix("Api") for part in parts)
        return super().get_serializer_name(serializer, direction)

    def get_operation_id(self) -> str:
        # Every operation names itself (`@extend_schema(operation_id=...)`): a
        # generated client's function names are these ids.
        raise ImproperlyConfigured(
            f"{type(self.view).__name__}.{self.method.lower()} has no operation_id"
        )

    # What the contract adds to every operation (of an ApiView; others, the schema's
    # own views, as drf-spectacular makes them).

    def _api(self) -> ApiView | None:
        return self.view if isinstance(self.view, ApiView) else None

    def _open(self) -> bool:
        return any(p is AllowAny for p in self.view.permission_classes)

    def get_description(self) -> str:  # type: ignore[override]
        description = super().get_description() or ""
        view = self._api()
        if view is not None and not self._open():
            description += (
                f"\n\nToken scope: {scopes_text(view.scope_for(self.method))}."
            )
        return description.strip()

    def is_deprecated(self) -> bool:
        view = self._api()
        if view is not None and self.method.lower() in view.deprecations:
            return True
        return super().is_deprecated()

    def map_parsers(self) -> list[Any]:
        return ["application/json"]

    def _changes_versioned(self) -> bool:
        """A change that must name the version it changes (If-Match)."""
        view = self._api()
        return (
            view is not None
            and self.method.lower() in view.etag_methods
            and self.method not in SAFE_METHODS
        )

    def get_override_parameters(self) -> list[Any]:
        parameters = list(super().get_override_parameters())
        view = self._api()
        if view is None:
            return parameters
        query = view.query_serializers.get(self.method.lower())
        if query is not None:
            parameters.append(query)
        if view.takes_idempotency_key(self.method):
            parameters.append(
                OpenApiParameter(
                    IDEMPOTENCY_HEADER,
                    str,
                    OpenApiParameter.HEADER,
                    description="Any unique string (a UUID) per change: a retry with "
                    "the same key gets the first answer instead of a second change. "
                    "Kept 24 hours, per token.",
                )
            )
        if self._changes_versioned():
            parameters.append(
                OpenApiParameter(
                    "If-Match",
                    str,
                    OpenApiParameter.HEADER,
                    required=True,
                    description="The ETag of the version being changed.",
                )
            )
        return parameters

    def _error_statuses(self, view: ApiView) -> list[int]:
        statuses = [400, 429, 500, 503]
        if not self._open():
            statuses += [401, 403]
        if "{" in self.path or self.method not in SAFE_METHODS:
            statuses.append(404)  # an id in the path, or in the body
        if self.method not in SAFE_METHODS:
            statuses.append(415)
        if view.takes_idempotency_key(self.method):
            statuses += [409, 422]
        if self._changes_versioned():
            statuses += [412, 428]
        return sorted(set(statuses))

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)  # type: ignore[arg-type]
        view = self._api()
        if view is None:
            return responses
        error = self.resolve_serializer(ErrorSerializer, "response").ref
        for code in self._error_statuses(view):
            responses.setdefault(str(code), {"description": ERRORS[code]})
        versioned = self.method.lower() in view.etag_methods
        for status, response in responses.items():
            # An error an operation declares itself (the relay's 401 and 410) is in
            # the envelope too.
            if int(status) >= 400 and "content" not in response:
                response["content"] = {"application/json": {"schema": error}}
            headers = response.setdefault("headers", {})
            if status.startswith("2") or status == "429":
                for name, text in RATE_HEADERS.items():
                    headers.setdefault(name, _header(text))
            if status in ("409", "429", "503"):
                headers.setdefault(
                    "Retry-After", _header("Seconds to wait before retrying.")
                )
            if status == "201":
                headers.setdefault(
                    "Location", _header("The new object's URL.", "string")
                )
            if status == "200" and versioned:
                headers.setdefault(
                    "ETag",
                    _header("The version: send it in If-Match to change.", "string"),
                )
        return responses
