from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import GOVERNANCE_ROLES
from apps.accounts.permissions import role_permission
from apps.core.pagination import Pagination, paginated_response
from apps.monitoring.models import AlertStatus
from apps.monitoring.selectors import alert_list

Governance = role_permission(*GOVERNANCE_ROLES)


class AlertOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    rule = serializers.CharField()
    severity = serializers.CharField()
    status = serializers.CharField()
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


class AlertListApi(APIView):
    """Suspicious-access alerts, newest first (compliance officers, privacy admins)."""

    permission_classes = [Governance]
    pagination_class = Pagination  # the schema shows the list as a page

    @extend_schema(
        parameters=[OpenApiParameter("status", str, enum=AlertStatus.values)],
        responses={200: AlertOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        status = request.query_params.get("status", "")
        if status and status not in AlertStatus.values:
            raise serializers.ValidationError(
                {"status": ["Choose from: " + ", ".join(AlertStatus.values) + "."]}
            )
        return paginated_response(
            request=request,
            view=self,
            items=alert_list(status=status),
            serialize=lambda page: AlertOutputSerializer(page, many=True).data,
        )
