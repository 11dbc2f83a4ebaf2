from uuid import UUID

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.models import Role
from apps.accounts.permissions import request_user, role_permission
from apps.accounts.scopes import Scope
from apps.core.api import ApiView, created
from apps.core.pagination import CursorPagination, Order, paginated_response
from apps.webhooks.models import DeliveryStatus, EventType
from apps.webhooks.selectors import delivery_list, endpoint_get, endpoint_list
from apps.webhooks.services import (
    deliveries_replay,
    endpoint_create,
    endpoint_delete,
)

PrivacyAdmins = role_permission(Role.PRIVACY_ADMIN)


class EndpointOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.CharField()
    description = serializers.CharField()
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=EventType.choices)
    )
    scope = serializers.CharField()
    active = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    pending = serializers.IntegerField(default=0, help_text="Counted up to 10,000.")
    delivered = serializers.IntegerField(
        default=0, help_text="Counted up to 10,000, since the last purge."
    )
    dead = serializers.IntegerField(default=0, help_text="Counted up to 10,000.")
    retrying = serializers.IntegerField(
        default=0, help_text="Pending ones that failed at least once (up to 10,000)."
    )
    held = serializers.IntegerField(
        default=0,
        help_text="Pending ones held behind a dead letter of their customer "
        "(up to 10,000): replay it.",
    )
    last_response = serializers.CharField(
        allow_null=True, default=None, help_text="The last attempt's outcome."
    )
    last_attempt_at = serializers.DateTimeField(allow_null=True, default=None)


class EndpointCreatedSerializer(EndpointOutputSerializer):
    secret = serializers.CharField(help_text="The signing secret, shown only here.")


class DeliveryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    event_id = serializers.CharField()
    type = serializers.CharField(source="event.type")
    customer_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=DeliveryStatus.choices)
    attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField()
    last_response = serializers.CharField()
    delivered_at = serializers.DateTimeField(allow_null=True)
    dead_at = serializers.DateTimeField(allow_null=True)


class WebhookListCreateApi(ApiView):
    """Webhook endpoints (privacy admins), or register one: Amanah generates its
    signing secret, answered once as `secret`."""

    permission_classes = [PrivacyAdmins]
    pagination_class = CursorPagination
    scopes = {"post": Scope.COMPLIANCE_WRITE}
    # The signing secret is shown once: never kept to be replayed.
    secret_answer_methods = frozenset({"post"})

    class InputSerializer(serializers.Serializer):
        url = serializers.CharField(max_length=500)
        events = serializers.ListField(
            child=serializers.ChoiceField(choices=EventType.choices),
            allow_empty=False,
        )
        description = serializers.CharField(
            max_length=200, required=False, allow_blank=True
        )

    @extend_schema(
        operation_id="list_webhooks",
        responses={200: EndpointOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        return paginated_response(
            request=request,
            order=Order(("created_at", "pk")),
            items=endpoint_list(),
            serialize=lambda page: EndpointOutputSerializer(page, many=True).data,
        )

    @extend_schema(
        operation_id="create_webhook",
        request=InputSerializer,
        responses={201: EndpointCreatedSerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint, secret = endpoint_create(
            actor=request_user(request), **data.validated_data
        )
        body = {**EndpointOutputSerializer(endpoint).data, "secret": secret}
        return created(body, location=reverse("webhook-detail", args=[endpoint.pk]))


class WebhookDetailApi(ApiView):
    """One webhook endpoint with its deliveries counted (each up to 10,000);
    deleting it cancels what it has not received."""

    permission_classes = [PrivacyAdmins]
    scopes = {"delete": Scope.COMPLIANCE_WRITE}
    etag_methods = frozenset({"get"})

    @extend_schema(
        operation_id="get_webhook", responses={200: EndpointOutputSerializer}
    )
    def get(self, request: Request, endpoint_id: UUID) -> Response:
        return Response(
            EndpointOutputSerializer(endpoint_get(endpoint_id=endpoint_id)).data
        )

    @extend_schema(operation_id="delete_webhook", responses={204: None})
    def delete(self, request: Request, endpoint_id: UUID) -> Response:
        endpoint_delete(
            actor=request_user(request),
            endpoint=endpoint_get(endpoint_id=endpoint_id),
        )
        return Response(status=204)


class WebhookDeliveriesApi(ApiView):
    """An endpoint's deliveries in their order, `?status=dead` for its dead
    letters."""

    permission_classes = [PrivacyAdmins]
    pagination_class = CursorPagination

    class QuerySerializer(serializers.Serializer):
        status = serializers.ChoiceField(
            choices=DeliveryStatus.choices, required=False, help_text="Only these."
        )

    query_serializers = {"get": QuerySerializer}

    @extend_schema(
        operation_id="list_webhook_deliveries",
        responses={200: DeliveryOutputSerializer(many=True)},
    )
    def get(self, request: Request, endpoint_id: UUID) -> Response:
        endpoint = endpoint_get(endpoint_id=endpoint_id)
        return paginated_response(
            request=request,
            order=Order(("id",)),
            items=delivery_list(endpoint=endpoint, status=self.query.get("status")),
            serialize=lambda page: DeliveryOutputSerializer(page, many=True).data,
        )


class WebhookReplayApi(ApiView):
    """Queue an endpoint's dead letters again, in their order (privacy admins;
    audited)."""

    permission_classes = [PrivacyAdmins]
    scopes = {"post": Scope.COMPLIANCE_WRITE}

    class OutputSerializer(serializers.Serializer):
        replayed = serializers.IntegerField()

    @extend_schema(
        operation_id="replay_webhook_dead_letters",
        request=None,
        responses={200: OutputSerializer},
    )
    def post(self, request: Request, endpoint_id: UUID) -> Response:
        count = deliveries_replay(
            actor=request_user(request),
            endpoint=endpoint_get(endpoint_id=endpoint_id),
        )
        return Response({"replayed": count})
