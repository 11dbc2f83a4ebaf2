from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.lockout import sign_in_lock_for
from apps.accounts.permissions import request_user
from apps.accounts.roles import capabilities_for
from apps.accounts.services import token_expires_at, token_issue


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


class TokenCreateApi(APIView):
    """Exchange a staff username and password for an API token (staff only).

    A locked sign-in (django-axes) is 429 with Retry-After and code "locked", the same
    for a username that does not exist. A customer's credentials get the answer wrong
    ones get (400).
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_scope = "token"

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        expires_at = serializers.DateTimeField()

    class LockedSerializer(serializers.Serializer):
        detail = serializers.CharField()
        code = serializers.CharField(required=False, help_text='"locked" when locked')

    @extend_schema(
        request=StaffAuthTokenSerializer,
        responses={
            200: OutputSerializer,
            429: OpenApiResponse(
                LockedSerializer, description="Locked, or throttled; see Retry-After."
            ),
        },
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
                    {"detail": lock.message, "code": "locked"},
                    status=429,
                    headers={"Retry-After": str(lock.retry_after)},
                )
            raise ValidationError(data.errors)
        user = data.validated_data["user"]
        # As a page sign-in: django-axes forgets this username's failures.
        user_logged_in.send(sender=type(user), request=request, user=user)
        token = token_issue(user=user)
        return Response(
            {"token": token.key, "expires_at": token_expires_at(token=token)}
        )


class MeApi(APIView):
    """Who the token or session belongs to, and what their role may do."""

    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        role = serializers.CharField()
        capabilities = serializers.ListField(child=serializers.CharField())

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request: Request) -> Response:
        user = request_user(request)
        return Response(
            {
                "username": user.username,
                "role": user.role,
                "capabilities": list(capabilities_for(user.role)),
            }
        )
