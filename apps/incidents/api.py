from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import GOVERNANCE_ROLES
from apps.accounts.permissions import request_user, role_permission
from apps.core.pagination import Pagination, paginated_response
from apps.customers.registry import DataCategory
from apps.incidents.models import IncidentKind, IncidentStatus, RiskLevel, Severity
from apps.incidents.selectors import (
    affected_counts,
    affected_erased_count,
    deadlines_for,
    incident_get,
    incident_list,
    notification_progress,
)
from apps.incidents.services import (
    incident_create,
    incident_notify,
    incident_transition,
    incident_update,
)

Governance = role_permission(*GOVERNANCE_ROLES)


class IncidentInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=IncidentKind.choices)
    severity = serializers.ChoiceField(choices=Severity.choices)
    occurred_at = serializers.DateTimeField(required=False, allow_null=True)
    detected_at = serializers.DateTimeField()
    aware_at = serializers.DateTimeField()
    assessed_at = serializers.DateTimeField(required=False, allow_null=True)
    data_categories = serializers.ListField(
        child=serializers.ChoiceField(choices=DataCategory.choices), required=False
    )
    systems = serializers.ListField(
        child=serializers.CharField(max_length=100), required=False
    )
    risk_level = serializers.ChoiceField(choices=RiskLevel.choices, required=False)
    encrypted_keys_safe = serializers.BooleanField(required=False)
    risk_reasoning = serializers.CharField(required=False, allow_blank=True)
    what_happened = serializers.CharField(required=False, allow_blank=True)
    what_we_are_doing = serializers.CharField(required=False, allow_blank=True)
    what_you_can_do = serializers.CharField(required=False, allow_blank=True)
    contact = serializers.CharField(required=False, allow_blank=True, max_length=300)
    remedy_kind = serializers.ChoiceField(
        choices=["", "voucher", "service_credit", "monitoring"], required=False
    )
    remedy_description = serializers.CharField(
        required=False, allow_blank=True, max_length=300
    )


class IncidentOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    title = serializers.CharField()
    kind = serializers.CharField()
    severity = serializers.CharField()
    status = serializers.CharField()
    occurred_at = serializers.DateTimeField(allow_null=True)
    detected_at = serializers.DateTimeField()
    aware_at = serializers.DateTimeField()
    assessed_at = serializers.DateTimeField(allow_null=True)
    contained_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    data_categories = serializers.ListField(child=serializers.CharField())
    systems = serializers.ListField(child=serializers.CharField())
    risk_level = serializers.CharField()
    encrypted_keys_safe = serializers.BooleanField()
    risk_reasoning = serializers.CharField()


class IncidentListCreateApi(APIView):
    """The incident register (compliance officers and privacy admins)."""

    permission_classes = [Governance]
    pagination_class = Pagination  # the schema shows the list as a page

    @extend_schema(responses={200: IncidentOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        return paginated_response(
            request=request,
            view=self,
            items=incident_list(),
            serialize=lambda page: IncidentOutputSerializer(page, many=True).data,
        )

    @extend_schema(
        request=IncidentInputSerializer, responses={201: IncidentOutputSerializer}
    )
    def post(self, request: Request) -> Response:
        data = IncidentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        incident = incident_create(
            actor=request_user(request), data=data.validated_data
        )
        return Response(IncidentOutputSerializer(incident).data, status=201)


class IncidentDetailApi(APIView):
    permission_classes = [Governance]

    @extend_schema(responses={200: IncidentOutputSerializer})
    def get(self, request: Request, incident_id: UUID) -> Response:
        return Response(
            IncidentOutputSerializer(incident_get(incident_id=incident_id)).data
        )

    @extend_schema(
        request=IncidentInputSerializer, responses={200: IncidentOutputSerializer}
    )
    def patch(self, request: Request, incident_id: UUID) -> Response:
        incident = incident_get(incident_id=incident_id)
        data = IncidentInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        incident = incident_update(
            actor=request_user(request), incident=incident, data=data.validated_data
        )
        return Response(IncidentOutputSerializer(incident).data)


class IncidentTransitionApi(APIView):
    permission_classes = [Governance]

    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=IncidentStatus.choices)
        note = serializers.CharField(required=False, allow_blank=True, max_length=500)

    @extend_schema(request=InputSerializer, responses={200: IncidentOutputSerializer})
    def post(self, request: Request, incident_id: UUID) -> Response:
        incident = incident_get(incident_id=incident_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        incident = incident_transition(
            actor=request_user(request), incident=incident, **data.validated_data
        )
        return Response(IncidentOutputSerializer(incident).data)


class IncidentDeadlinesApi(APIView):
    """Every legal deadline that applies, earliest first (recorded ones once closed)."""

    permission_classes = [Governance]

    class OutputSerializer(serializers.Serializer):
        rule = serializers.CharField(source="rule_code")
        regime = serializers.CharField()
        jurisdiction = serializers.CharField()
        audience = serializers.CharField()
        due_at = serializers.DateTimeField(allow_null=True)
        affected = serializers.IntegerField()
        missed = serializers.BooleanField()
        exempt = serializers.BooleanField()
        legal_source = serializers.CharField()
        note = serializers.CharField()

    @extend_schema(responses={200: OutputSerializer(many=True)})
    def get(self, request: Request, incident_id: UUID) -> Response:
        incident = incident_get(incident_id=incident_id)
        return Response(
            self.OutputSerializer(deadlines_for(incident=incident), many=True).data
        )


class IncidentAffectedApi(APIView):
    permission_classes = [Governance]

    class OutputSerializer(serializers.Serializer):
        total = serializers.IntegerField()
        by_place = serializers.ListField(child=serializers.DictField())
        erased_before_notice = serializers.IntegerField(
            help_text="Matched, but erased before any notice: not affected, not told."
        )

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request: Request, incident_id: UUID) -> Response:
        incident = incident_get(incident_id=incident_id)
        counts = affected_counts(incident=incident)
        return Response(
            {
                "total": sum(counts.values()),
                "by_place": [
                    {"country": country, "region": region, "count": n}
                    for (country, region), n in sorted(counts.items())
                ],
                "erased_before_notice": affected_erased_count(incident=incident),
            }
        )


class IncidentNotificationsApi(APIView):
    """Notification progress (GET), or queue and send the notices (POST)."""

    permission_classes = [Governance]

    class OutputSerializer(serializers.Serializer):
        total = serializers.IntegerField()
        by_status = serializers.DictField(
            child=serializers.IntegerField(),
            help_text="queued, retrying, sending, sent, failed (sent and failed are "
            "final).",
        )
        by_channel = serializers.DictField(child=serializers.DictField())
        reasons = serializers.DictField(
            child=serializers.IntegerField(),
            help_text="Failed notices per reason (a category, never an address).",
        )
        next_attempt_at = serializers.DateTimeField(
            allow_null=True, help_text="When the earliest retry is due."
        )
        erased_before_notice = serializers.IntegerField(
            help_text="Customers erased before any notice: not affected, not told."
        )

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request: Request, incident_id: UUID) -> Response:
        incident = incident_get(incident_id=incident_id)
        progress = notification_progress(incident=incident)
        return Response(self.OutputSerializer(progress).data)

    @extend_schema(request=None, responses={202: OutputSerializer})
    def post(self, request: Request, incident_id: UUID) -> Response:
        incident = incident_get(incident_id=incident_id)
        incident_notify(actor=request_user(request), incident=incident)
        progress = notification_progress(incident=incident)
        return Response(self.OutputSerializer(progress).data, status=202)
