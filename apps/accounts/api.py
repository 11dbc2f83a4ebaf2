from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.lockout import sign_in_lock_for
from apps.accounts.roles import capabilities_for
from apps.accounts.services import token_expires_at, token_issue


class TokenCreateApi(APIView):
    """Exchange a username and password for an API token.

    A locked sign-in (django-axes) is 429 with Retry-After and code "locked", the same
    for a username that does not exist.
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
        request=AuthTokenSerializer,
        responses={
            200: OutputSerializer,
            429: OpenApiResponse(
                LockedSerializer, description="Locked, or throttled; see Retry-After."
            ),
        },
    )
    def post(self, request: Request) -> Response:
        data = AuthTokenSerializer(data=request.data, context={"request": request})
        if not data.is_valid():
            # Axes marks the request it was given, here DRF's, not the one its
            # middleware sees: the lock is answered here.
            if getattr(request, "axes_locked_out", False):
                lock = sign_in_lock_for(request, request.axes_credentials)
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
        user = request.user
        return Response(
            {
                "username": user.username,
                "role": user.role,
                "capabilities": list(capabilities_for(user.role)),
            }
        )
