from uuid import UUID

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.models import Role
from apps.accounts.permissions import request_user, role_permission
from apps.accounts.scopes import Scope
from apps.core.api import ApiView
from apps.core.pagination import CursorPagination, Order, paginated_response
from apps.core.sync import SYNC_ORDER, UpdatedSinceSerializer, settled
from apps.requests.models import RequestKind, RequestStatus
from apps.requests.selectors import (
    request_get,
    request_queue,
    requests_changed_since,
)
from apps.requests.services import request_transition

PrivacyAdmins = role_permission(Role.PRIVACY_ADMIN)


class RequestOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    customer = serializers.UUIDField(source="customer_id", allow_null=True)
    kind = serializers.ChoiceField(choices=RequestKind.choices)
    status = serializers.ChoiceField(choices=RequestStatus.choices)
    regime = serializers.CharField()
    received_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    extended = serializers.BooleanField()
    overdue = serializers.SerializerMethodField()
    outcome = serializers.CharField()
    updated_at = serializers.DateTimeField()

    def get_overdue(self, obj) -> bool:
        return obj.is_open and obj.due_at <= timezone.now()


class RequestListApi(ApiView):
    """The queue of data subject requests (privacy admins): open ones by due date,
    with `all=true` closed ones too. With `updated_since`, every request changed
    since then, oldest change first, closed ones included: a system that mirrors the
    queue reads on from the `next` link of its last page."""

    permission_classes = [PrivacyAdmins]
    pagination_class = CursorPagination

    class QuerySerializer(UpdatedSinceSerializer):
        all = serializers.BooleanField(
            required=False, default=False, help_text="Include closed ones."
        )

    query_serializers = {"get": QuerySerializer}

    @extend_schema(
        operation_id="list_requests",
        responses={200: RequestOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        sync = "updated_since" in self.query
        if sync:
            items = settled(requests_changed_since(since=self.query["updated_since"]))
            order = SYNC_ORDER
        else:
            items = request_queue(include_closed=self.query["all"])
            order = Order(("due_at", "pk"))
        return paginated_response(
            request=request,
            items=items,
            order=order,
            serialize=lambda page: RequestOutputSerializer(page, many=True).data,
            resumable=sync,
        )


class RequestTransitionApi(ApiView):
    """Move a request on with a reason (refusals need one)."""

    permission_classes = [PrivacyAdmins]
    scopes = {"post": Scope.COMPLIANCE_WRITE}

    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(
            choices=[s for s in RequestStatus.values if s != "received"]
        )
        reason = serializers.CharField(required=False, allow_blank=True, max_length=500)

    @extend_schema(
        operation_id="transition_request",
        request=InputSerializer,
        responses={200: RequestOutputSerializer},
    )
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
