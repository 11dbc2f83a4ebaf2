"""The base of every API view: the contract each operation keeps (docs/API.md).

- Query parameters: only those the operation declares (its `query_serializers` entry,
  plus `cursor` and `page_size` where it pages); any other is a 400 naming it.
- Scopes: a token carries scopes (apps.accounts.scopes); each method needs one
  (`scopes`; GET needs "read"). A session, or a token without a scope list, has all.
- Rate limits: `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` on every
  answer (apps.accounts.throttling counts them), `Retry-After` on a 429.
- Safe retries: a POST, PATCH or DELETE that changes something honours an
  `Idempotency-Key` header (apps.core.idempotency): the first answer is kept and
  replayed for the same key; the change and the kept answer commit together.
- Versions: single objects carry an `ETag`; a change to one names it in `If-Match`.
"""

import calendar
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from django.db import transaction
from django.http import HttpResponseBase
from django.utils.http import http_date
from rest_framework import serializers
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core import idempotency
from apps.core.errors import Forbidden, PreconditionRequired
from apps.core.etags import etag_of
from apps.core.pagination import CursorPagination

READ_SCOPE = "read"
PARAMETER_NAME = re.compile(r"[A-Za-z0-9_.\-\[\]]{1,40}")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
IDEMPOTENCY_HEADER = idempotency.HEADER


@dataclass(frozen=True)
class Deprecation:
    """An operation on its way out of /api/v1/ (docs/API.md, "Versions"): since when,
    when it stops answering, and what to use instead."""

    since: date
    sunset: date
    instead: str

    def headers(self) -> dict[str, str]:
        # RFC 9745 (Deprecation: a structured date) and RFC 8594 (Sunset).
        since = calendar.timegm(self.since.timetuple())
        return {
            "Deprecation": f"@{since}",
            "Sunset": http_date(calendar.timegm(self.sunset.timetuple())),
            "Link": f'<{self.instead}>; rel="successor-version"',
        }


class ApiView(APIView):
    # Method (lower case) -> the scope a token needs for it. GET needs "read"; every
    # other method must be named here (tests/core/test_api_contract.py checks).
    # A tuple: any one of them will do.
    scopes: ClassVar[Mapping[str, str | tuple[str, ...]]] = {}
    # CursorPagination for an operation that answers with a page.
    pagination_class: ClassVar[type[CursorPagination] | None] = None
    # Method -> the serializer of its query parameters (documented and validated).
    query_serializers: ClassVar[Mapping[str, type[serializers.Serializer]]] = {}
    # Methods that answer with a page (CursorPagination), where `pagination_class` is
    # set; a POST that searches names itself here.
    paginated_methods: ClassVar[frozenset[str]] = frozenset({"get"})
    # Methods that ask or read without changing anything (a search by POST): they
    # take no Idempotency-Key.
    read_only_methods: ClassVar[frozenset[str]] = frozenset()
    # Methods whose answer holds a secret shown once (a new token's key): never kept
    # to be replayed, so they take no Idempotency-Key either.
    secret_answer_methods: ClassVar[frozenset[str]] = frozenset()
    # Methods whose object carries an ETag: GET answers with it (the view's own, or one
    # of the answer's bytes), PATCH needs If-Match.
    etag_methods: ClassVar[frozenset[str]] = frozenset()

    # Method -> its Deprecation, while it is deprecated (answers carry the headers,
    # the schema marks it).
    deprecations: ClassVar[Mapping[str, Deprecation]] = {}

    query: dict[str, Any]
    # The customer a change's answer shows, set by the handler: erasing the customer
    # forgets the kept answer (idempotency.idempotency_forget).
    idempotency_subject: Any = None

    # What each request must pass, after authentication and permissions.

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self._check_scope(request)
        self._check_media_type(request)
        self.query = self._query_params(request)

    def _check_media_type(self, request: Request) -> None:
        """A body the operation cannot read is a 415, whoever read the stream first
        (DRF answers an empty body when a middleware has read a form's)."""
        length = request.META.get("CONTENT_LENGTH") or "0"
        if not length.isdigit() or int(length) == 0:
            return
        negotiator = self.get_content_negotiator()
        if negotiator.select_parser(request, self.get_parsers()) is None:
            raise UnsupportedMediaType(request.content_type)

    def scope_for(self, method: str) -> str | tuple[str, ...]:
        method = method.lower()
        if method in self.scopes:
            return self.scopes[method]
        if method.upper() in SAFE_METHODS:
            return READ_SCOPE
        # Unnamed: nothing but a session or an every-scope token may call it.
        return f"{type(self).__name__}.{method}"

    def _check_scope(self, request: Request) -> None:
        granted = getattr(request.auth, "scopes", None)
        needed = self.scope_for(request.method or "GET")
        options = needed if isinstance(needed, tuple) else (needed,)
        if granted is not None and not set(options) & set(granted):
            raise Forbidden(
                f"This token does not have the {scopes_text(needed)} scope.",
                code="scope",
            )

    def _query_params(self, request: Request) -> dict[str, Any]:
        method = (request.method or "GET").lower()
        query_class = self.query_serializers.get(method)
        allowed = set(query_class().fields) if query_class else set()
        if self.pagination_class is not None and method in self.paginated_methods:
            allowed |= set(CursorPagination.query_params)
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise serializers.ValidationError(
                {
                    # A name as sent only when it looks like a parameter's name: a
                    # client's typo may be anything, an email address included.
                    (name if PARAMETER_NAME.fullmatch(name) else "(unknown)"): [
                        "Not a parameter of this operation"
                        + (
                            f" (it takes: {', '.join(sorted(allowed))})."
                            if allowed
                            else "."
                        )
                    ]
                    for name in unknown
                },
                code="unknown_parameter",
            )
        if query_class is None:
            return {}
        query = query_class(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        return dict(query.validated_data)

    # Safe retries.

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # DRF's APIView.dispatch, with the handler run through `_run_kept` when the
        # request carries an Idempotency-Key.
        self.args = args
        self.kwargs = kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        response: HttpResponseBase
        try:
            self.initial(request, *args, **kwargs)
            name = (request.method or "").lower()
            if name in self.http_method_names:
                handler = getattr(self, name, self.http_method_not_allowed)
            else:
                handler = self.http_method_not_allowed
            claim = self._idempotency_claim(request)
            if isinstance(claim, idempotency.StoredResponse):
                response = claim.response()
            elif claim is not None:
                response = self._run_kept(claim, handler, request, *args, **kwargs)
            else:
                response = handler(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response

    def takes_idempotency_key(self, method: str) -> bool:
        method = method.lower()
        return (
            method.upper() not in SAFE_METHODS
            and method not in self.read_only_methods
            and method not in self.secret_answer_methods
        )

    def _idempotency_claim(
        self, request: Request
    ) -> idempotency.Claim | idempotency.StoredResponse | None:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        method = (request.method or "").upper()
        if key is None or not self.takes_idempotency_key(method):
            return None
        if not (request.user and request.user.is_authenticated):
            return None  # no owner to keep it for (no operation of this kind today)
        return idempotency.claim(
            owner=idempotency_owner(request),
            key=key,
            method=method,
            path=request.get_full_path(),
            body=request._request.body,  # the exact bytes the client sent
        )

    def _run_kept(
        self,
        claim: idempotency.Claim,
        handler: Callable[..., HttpResponseBase],
        request: Request,
        *args: Any,
        **kwargs: Any,
    ) -> HttpResponseBase:
        """The handler and the kept answer in one transaction: a crash before the
        commit leaves neither, and a retry runs the change again; after it, a retry
        gets the answer (idempotency.answer_is_kept says which answers are kept). An
        error of ours (5xx) rolls the change back and frees the key: a retry makes the
        change once."""
        try:
            with transaction.atomic():
                try:
                    response = handler(request, *args, **kwargs)
                except Exception as exc:
                    response = self.handle_exception(exc)
                response = self.finalize_response(request, response, *args, **kwargs)
                if response.status_code >= 500:
                    transaction.set_rollback(True)
                else:
                    idempotency.settle(
                        claim=claim,
                        response=self._rendered(response),
                        subject=self.idempotency_subject,
                    )
        except BaseException:
            idempotency.release(claim=claim)
            raise
        if response.status_code >= 500:
            idempotency.release(claim=claim)
        return response

    @staticmethod
    def _rendered(response: HttpResponseBase) -> HttpResponseBase:
        render = getattr(response, "render", None)
        if render is not None and not getattr(response, "is_rendered", True):
            render()
        return response

    # Answers.

    def finalize_response(
        self, request: Request, response: Any, *args: Any, **kwargs: Any
    ) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        limit = getattr(request, "rate_limit", None)
        if limit is not None:
            for header, value in limit.headers().items():
                response.headers.setdefault(header, value)
        if (
            request.method == "GET"
            and "get" in self.etag_methods
            and response.status_code == 200
            and "ETag" not in response.headers
            and isinstance(response, Response)
        ):
            response.render()
            response.headers["ETag"] = etag_of(response.content)
        deprecation = self.deprecations.get((request.method or "").lower())
        if deprecation is not None:
            for header, value in deprecation.headers().items():
                response.headers[header] = value
        return response


def scopes_text(needed: str | tuple[str, ...]) -> str:
    options = needed if isinstance(needed, tuple) else (needed,)
    return " or ".join(f'"{scope}"' for scope in options)


def idempotency_owner(request: Request) -> str:
    """Whose keys a request's Idempotency-Key is among: its token's, else its user's
    (a browser session), so two clients never share one."""
    token_pk = getattr(request.auth, "pk", None)
    if token_pk is not None:
        return f"token:{token_pk}"
    return f"user:{request.user.pk}"


def created(data: Any, *, location: str) -> Response:
    """A 201 answer for a new resource, with its URL in `Location`."""
    return Response(data, status=201, headers={"Location": location})


def with_etag(response: Response, etag: str) -> Response:
    response.headers["ETag"] = etag
    return response


def if_match(request: Request) -> str:
    """The `If-Match` a change of a single object must send (its `ETag`): 428 when
    missing. Whether it is still current is the service's to say, under its lock
    (apps.core.etags.etag_check)."""
    value = request.headers.get("If-Match", "").strip()
    if not value:
        raise PreconditionRequired(
            "Send If-Match with the ETag of the version you are changing "
            "(read it first).",
            code="if_match_required",
        )
    return value
