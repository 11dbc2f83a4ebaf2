from uuid import UUID

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.access.errors import AccessError, RelayError
from apps.access.models import InteractionKind
from apps.access.selectors import (
    customer_exists,
    interaction_get_for,
    interaction_list_for,
)
from apps.access.services import (
    interaction_close,
    interaction_open,
    relay_route,
    relay_verify,
)
from apps.accounts.models import STAFF_ROLES
from apps.accounts.permissions import role_permission
from apps.accounts.selectors import user_get_by_username
from apps.core.pagination import Pagination, paginated_response
from apps.core.parsers import JSONTooDeep, json_loads_bounded

StaffOnly = role_permission(*STAFF_ROLES)


class InteractionOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    customer = serializers.UUIDField(source="customer_id")
    staff = serializers.CharField(source="staff.username")
    opened_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    close_reason = serializers.CharField()
    contact_alias = serializers.CharField(
        help_text="Virtual number relaying to the party."
    )
    is_open = serializers.SerializerMethodField()

    def get_is_open(self, obj) -> bool:
        return obj.is_open_at(self.context["now"])


def _out(interaction, many: bool = False):
    from django.utils import timezone

    return InteractionOutputSerializer(
        interaction, many=many, context={"now": timezone.now()}
    ).data


class InteractionListCreateApi(APIView):
    """My interactions, or open one: support agents open support cases for themselves;
    privacy admins may name the `staff` (e.g. to dispatch a delivery)."""

    permission_classes = [StaffOnly]
    pagination_class = Pagination  # the schema shows the list as a page

    class InputSerializer(serializers.Serializer):
        customer = serializers.UUIDField()
        kind = serializers.ChoiceField(choices=InteractionKind.choices)
        expires_at = serializers.DateTimeField(required=False)
        staff = serializers.CharField(required=False, max_length=150)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "state", str, enum=["open", "all"], description="Default open."
            ),
            OpenApiParameter("page", int),
        ],
        responses={200: InteractionOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        interactions = interaction_list_for(
            actor=request.user,
            include_closed=request.query_params.get("state") == "all",
        )
        return paginated_response(
            request=request,
            view=self,
            items=interactions,
            serialize=lambda page: _out(page, many=True),
        )

    @extend_schema(
        request=InputSerializer, responses={201: InteractionOutputSerializer}
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        staff = None
        if data.validated_data.get("staff"):
            staff = user_get_by_username(username=data.validated_data["staff"])
            if staff is None:
                raise AccessError("No such staff member.", field="staff")
        customer = customer_exists(customer_id=data.validated_data["customer"])
        interaction = interaction_open(
            actor=request.user,
            customer=customer,
            kind=data.validated_data["kind"],
            staff=staff,
            expires_at=data.validated_data.get("expires_at"),
        )
        return Response(_out(interaction), status=201)


class InteractionCloseApi(APIView):
    permission_classes = [StaffOnly]

    @extend_schema(request=None, responses={200: InteractionOutputSerializer})
    def post(self, request: Request, interaction_id: UUID) -> Response:
        interaction = interaction_get_for(
            actor=request.user, interaction_id=interaction_id
        )
        return Response(
            _out(interaction_close(actor=request.user, interaction=interaction))
        )


class ContactRelayApi(APIView):
    """Webhook for the telephony/email relay provider.

    Body `{"alias": ..., "caller": ...}`; headers `X-Amanah-Timestamp` (Unix seconds)
    and `X-Amanah-Signature` (hex HMAC-SHA256 of `timestamp + "." + body` under
    AMANAH_RELAY_SECRET). Unsigned, stale, future-dated or already used (each signed
    request works once; a retry is signed afresh): 401. Session closed or expired: 410.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        alias = serializers.CharField(max_length=64)
        caller = serializers.CharField(max_length=64)

    class OutputSerializer(serializers.Serializer):
        destination = serializers.CharField()
        caller_party = serializers.ChoiceField(choices=["staff", "customer"])

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        body = request._request.body  # the exact bytes that were signed
        relay_verify(
            timestamp=request.headers.get("X-Amanah-Timestamp", ""),
            signature=request.headers.get("X-Amanah-Signature", ""),
            body=body,
        )
        try:
            payload = json_loads_bounded(body)
        except JSONTooDeep as exc:
            raise RelayError(str(exc), code="too_deep") from None
        except ValueError:
            raise RelayError("The body must be JSON.", code="parse_error") from None
        data = self.InputSerializer(data=payload)
        data.is_valid(raise_exception=True)
        return Response(relay_route(**data.validated_data))
