from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.models import GOVERNANCE_ROLES
from apps.accounts.permissions import role_permission
from apps.core.api import ApiView
from apps.core.pagination import CursorPagination, Order, paginated_response
from apps.monitoring.models import AlertSeverity, AlertStatus
from apps.monitoring.selectors import alert_list

Governance = role_permission(*GOVERNANCE_ROLES)


class AlertOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    rule = serializers.CharField()
    severity = serializers.ChoiceField(choices=AlertSeverity.choices)
    status = serializers.ChoiceField(choices=AlertStatus.choices)
    staff = serializers.CharField(
        source="staff.username", allow_null=True, default=None
    )
    evidence = serializers.DictField(help_text="Ids and counts, never personal data.")
    reason = serializers.CharField()
    handled_by = serializers.CharField(
        source="handled_by.username", allow_null=True, default=None
    )
    handled_at = serializers.DateTimeField(allow_null=True)
    incident = serializers.UUIDField(source="incident_id", allow_null=True)
    reveals_suspended_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class AlertListApi(ApiView):
    """Suspicious-access alerts, newest first (compliance officers, privacy admins)."""

    permission_classes = [Governance]
    pagination_class = CursorPagination

    class QuerySerializer(serializers.Serializer):
        status = serializers.ChoiceField(
            choices=AlertStatus.choices, required=False, help_text="Only these."
        )

    query_serializers = {"get": QuerySerializer}

    @extend_schema(
        operation_id="list_alerts",
        responses={200: AlertOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        return paginated_response(
            request=request,
            order=Order(("-created_at", "-pk")),
            items=alert_list(status=self.query.get("status", "")),
            serialize=lambda page: AlertOutputSerializer(page, many=True).data,
        )
