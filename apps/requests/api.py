from uuid import UUID

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.accounts.permissions import request_user, role_permission
from apps.core.pagination import Pagination, paginated_response
from apps.requests.models import RequestStatus
from apps.requests.selectors import request_get, request_queue
from apps.requests.services import request_transition

PrivacyAdmins = role_permission(Role.PRIVACY_ADMIN)


class RequestOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    customer = serializers.UUIDField(source="customer_id", allow_null=True)
    kind = serializers.CharField()
    status = serializers.CharField()
    regime = serializers.CharField()
    received_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    extended = serializers.BooleanField()
    overdue = serializers.SerializerMethodField()
    outcome = serializers.CharField()

    def get_overdue(self, obj) -> bool:
        from django.utils import timezone

        return obj.is_open and obj.due_at <= timezone.now()


class RequestListApi(APIView):
    """The queue of data subject requests, by due date (privacy admins)."""

    permission_classes = [PrivacyAdmins]
    pagination_class = Pagination  # the schema shows the list as a page

    @extend_schema(
        parameters=[OpenApiParameter("all", bool, description="Include closed ones.")],
        responses={200: RequestOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        return paginated_response(
            request=request,
            view=self,
            items=request_queue(
                include_closed=request.query_params.get("all") in ("1", "true")
            ),
            serialize=lambda page: RequestOutputSerializer(page, many=True).data,
        )


class RequestTransitionApi(APIView):
    """Move a request on with a reason (refusals need one)."""

    permission_classes = [PrivacyAdmins]

    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(
            choices=[s for s in RequestStatus.values if s != "received"]
        )
        reason = serializers.CharField(required=False, allow_blank=True, max_length=500)

    @extend_schema(request=InputSerializer, responses={200: RequestOutputSerializer})
    def post(self, request: Request, request_id: UUID) -> Response:
        item = request_get(request_id=request_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = request_transition(
            actor=request_user(request),
            request=item,
            status=data.validated_data["status"],
            note=data.validated_data.get("reason", ""),
        )
        return Response(RequestOutputSerializer(item).data)
