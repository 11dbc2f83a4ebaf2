from typing import Any

from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.lockout import sign_in_lock_for
from apps.accounts.models import ApiToken, ApiTokenKind, Role
from apps.accounts.permissions import request_user
from apps.accounts.roles import capabilities_for
from apps.accounts.scopes import ALL_SCOPES, Scope
from apps.accounts.selectors import api_token_get_for, api_token_list_for
from apps.accounts.services import (
    NAMED_TOKEN_DAYS_DEFAULT,
    NAMED_TOKEN_DAYS_MAX,
    api_token_create,
    api_token_revoke,
    token_issue,
)
from apps.core.api import ApiView, created
from apps.core.errors import Forbidden, NotFound
from apps.core.exceptions import error_body
from apps.core.pagination import CursorPagination, Order, paginated_response
from apps.core.parsers import JSONParser


class StaffAuthTokenSerializer(AuthTokenSerializer):
    """DRF's credentials check, for staff only: the API serves staff, and a customer's
    token would reach nothing but /auth/me/. A customer's right password gets the
    answer a wrong one gets and counts as a failure for the lockout alike, so the
    endpoint tells nobody whether a customer's password (or account) is right."""

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if not attrs["user"].is_staff_role:
            user_login_failed.send(
                sender=__name__,
                credentials={"username": attrs["username"]},
                request=self.context["request"],
            )
            # DRF's own message (and translation) for wrong credentials.
            raise serializers.ValidationError(
                _("Unable to log in with provided credentials."), code="authorization"
            )
        return attrs


class TokenCreateApi(ApiView):
    """Exchange a staff username and password for a new API token (staff only).

    Each sign-in gets its own token (every scope the role allows, for
    `AMANAH_TOKEN_HOURS`), so the processes of an integration do not share one. A
    locked sign-in (django-axes) is 429 with Retry-After and code "locked", the same
    for a username that does not exist. A customer's credentials get the answer wrong
    ones get (400).
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    # A JSON body, or a form (`curl -d username=... -d password=...`); the schema
    # declares JSON only.
    parser_classes = [JSONParser, FormParser]
    throttle_scope = "token"
    # Each sign-in is a new token: a retry signs in again. Its answer, which holds
    # the key, is never kept to be replayed.
    secret_answer_methods = frozenset({"post"})

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        expires_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="sign_in",
        request={"application/json": StaffAuthTokenSerializer},
        responses={
            200: OutputSerializer,
            429: OpenApiResponse(
                description='Locked (code "locked"), or throttled; see Retry-After.'
            ),
        },
        auth=[],  # no credentials: generated clients call it with a plain client
    )
    def post(self, request: Request) -> Response:
        data = StaffAuthTokenSerializer(data=request.data, context={"request": request})
        if not data.is_valid():
            # Axes marks the request it was given, here DRF's, not the one its
            # middleware sees: the lock is answered here.
            if getattr(request, "axes_locked_out", False):
                # Set by django-axes with axes_locked_out.
                credentials = request.axes_credentials  # type: ignore[attr-defined]
                lock = sign_in_lock_for(request, credentials)
                return Response(
                    error_body(status=429, code="locked", detail=lock.message),
                    status=429,
                    headers={"Retry-After": str(lock.retry_after)},
                )
            raise ValidationError(data.errors)
        user = data.validated_data["user"]
        # As a page sign-in: django-axes forgets this username's failures.
        user_logged_in.send(sender=type(user), request=request, user=user)
        issued = token_issue(user=user)
        return Response({"token": issued.key, "expires_at": issued.expires_at})


class MeApi(ApiView):
    """Who the token or session belongs to, and what their role may do."""

    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        role = serializers.ChoiceField(choices=Role.choices)
        capabilities = serializers.ListField(child=serializers.CharField())

    @extend_schema(operation_id="get_me", responses={200: OutputSerializer})
    def get(self, request: Request) -> Response:
        user = request_user(request)
        return Response(
            {
                "username": user.username,
                "role": user.role,
                "capabilities": list(capabilities_for(user.role)),
            }
        )


# Tokens per client: the caller's own tokens, listed, made and revoked.


class ApiTokenOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text="Blank for a sign-in token.")
    kind = serializers.ChoiceField(choices=ApiTokenKind.choices)
    scopes = serializers.SerializerMethodField()
    key_prefix = serializers.CharField(
        help_text="The key's first characters, to recognise it; never the key."
    )
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(
        allow_null=True, help_text="To the minute; null if never used."
    )

    @extend_schema_field(
        serializers.ListField(child=serializers.ChoiceField(choices=Scope.choices))
    )
    def get_scopes(self, token: ApiToken) -> list[str]:
        # A sign-in token carries every scope (stored as null).
        return list(ALL_SCOPES if token.scopes is None else token.scopes)


# No scope lets a token manage tokens: a named token is refused before scopes are
# checked (ApiTokenManageApi.check_permissions). What the schema's "Token scope" line
# says instead; no named token can hold it (api_token_create takes Scope values only).
MANAGE_TOKENS = "none: a session or a sign-in token"


class ApiTokenManageApi(ApiView):
    """Managing API tokens takes a browser session or a sign-in token: a named token
    (an integration's) may not list, make or revoke tokens (403, code
    "named_token")."""

    scopes = {method: MANAGE_TOKENS for method in ("get", "post", "delete")}

    def check_permissions(self, request: Request) -> None:
        super().check_permissions(request)
        if getattr(request.auth, "kind", None) == ApiTokenKind.NAMED:
            raise Forbidden(
                "A named token cannot manage tokens; sign in, or use the security "
                "page.",
                code="named_token",
            )


def _token_location(token: ApiToken) -> str:
    return reverse("api-token-detail", kwargs={"token_id": token.pk})


class ApiTokenListCreateApi(ApiTokenManageApi):
    """Your live API tokens (sign-in and named), newest first; and a new named token
    for an integration, whose key is shown in this answer only. Making one takes a
    browser session past its second factor (a token gets 403, code
    `second_factor_needed`)."""

    pagination_class = CursorPagination
    # A token is made once; the key is in this answer only and must not be kept to
    # replay it (a retry with the same name is refused: names are unique).
    secret_answer_methods = frozenset({"post"})

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(
            max_length=100, help_text="Unique among your live tokens."
        )
        scopes = serializers.ListField(
            child=serializers.ChoiceField(choices=Scope.choices), allow_empty=False
        )
        expires_in_days = serializers.IntegerField(
            min_value=1,
            max_value=NAMED_TOKEN_DAYS_MAX,
            default=NAMED_TOKEN_DAYS_DEFAULT,
        )

    class CreatedSerializer(ApiTokenOutputSerializer):
        token = serializers.CharField(
            help_text="The key: shown in this answer only, never again."
        )

    @extend_schema(
        operation_id="list_api_tokens",
        responses={200: ApiTokenOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        return paginated_response(
            request=request,
            items=api_token_list_for(user=request_user(request)),
            order=Order(("-created_at", "-id")),
            serialize=lambda rows: ApiTokenOutputSerializer(rows, many=True).data,
        )

    @extend_schema(
        operation_id="create_api_token",
        request=InputSerializer,
        responses={201: CreatedSerializer},
    )
    def post(self, request: Request) -> Response:
        if request.auth is not None:
            # A named token lasts months: it takes the second factor, which a
            # sign-in token (a password alone) has not shown.
            raise Forbidden(
                "Make named tokens on the security page (/accounts/security/), signed "
                "in with your second factor; a token cannot make one.",
                code="second_factor_needed",
            )
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        issued = api_token_create(actor=request_user(request), **data.validated_data)
        body: dict[str, Any] = {
            "token": issued.key,
            **ApiTokenOutputSerializer(issued.token).data,
        }
        return created(body, location=_token_location(issued.token))


class ApiTokenDetailApi(ApiTokenManageApi):
    """One of your live API tokens; revoking it stops it at once."""

    etag_methods = frozenset({"get"})

    @extend_schema(
        operation_id="get_api_token", responses={200: ApiTokenOutputSerializer}
    )
    def get(self, request: Request, token_id: int) -> Response:
        token = api_token_get_for(user=request_user(request), token_id=token_id)
        if token is None:
            raise NotFound("No such token.")
        return Response(ApiTokenOutputSerializer(token).data)

    @extend_schema(operation_id="revoke_api_token", responses={204: None})
    def delete(self, request: Request, token_id: int) -> Response:
        api_token_revoke(actor=request_user(request), token_id=token_id)
        return Response(status=204)
