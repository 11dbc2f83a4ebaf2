from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.roles import capabilities_for
from apps.accounts.services import token_expires_at, token_issue


class TokenCreateApi(APIView):
    """Exchange a username and password for an API token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_scope = "token"

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        expires_at = serializers.DateTimeField()

    @extend_schema(request=AuthTokenSerializer, responses={200: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = AuthTokenSerializer(data=request.data, context={"request": request})
        data.is_valid(raise_exception=True)
        token = token_issue(user=data.validated_data["user"])
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
