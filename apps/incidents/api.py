from uuid import UUID

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.models import GOVERNANCE_ROLES
from apps.accounts.permissions import request_user, role_permission
from apps.accounts.scopes import Scope
from apps.core.api import ApiView, created, if_match, with_etag
from apps.core.pagination import CursorPagination, Order, paginated_response
from apps.customers.registry import DataCategory
from apps.incidents.models import (
    Audience,
    IncidentKind,
    IncidentStatus,
    RiskLevel,
    Severity,
)
from apps.incidents.selectors import (
    DEADLINE_STATUSES,
    affected_counts,
    affected_erased_count,
    affected_erased_counts,
    deadlines_for,
    incident_etag,
    incident_get,
    incident_list,
    notification_progress,
)
from apps.incidents.services import (
    deadline_notified_record,
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
    kind = serializers.ChoiceField(choices=IncidentKind.choices)
    severity = serializers.ChoiceField(choices=Severity.choices)
    status = serializers.ChoiceField(choices=IncidentStatus.choices)
    occurred_at = serializers.DateTimeField(allow_null=True)
    detected_at = serializers.DateTimeField()
    aware_at = serializers.DateTimeField()
    assessed_at = serializers.DateTimeField(allow_null=True)
    contained_at = serializers.DateTimeField(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    data_categories = serializers.ListField(
        child=serializers.ChoiceField(choices=DataCategory.choices)
    )
    systems = serializers.ListField(child=serializers.CharField())
    risk_level = serializers.ChoiceField(choices=RiskLevel.choices)
    encrypted_keys_safe = serializers.BooleanField()
    risk_reasoning = serializers.CharField()


def _incident_answer(incident) -> Response:
    return with_etag(
        Response(IncidentOutputSerializer(incident).data), incident_etag(incident)
    )


class IncidentListCreateApi(ApiView):
    """The incident register, latest first (compliance officers and privacy
    admins), or record a new incident."""

    permission_classes = [Governance]
    pagination_class = CursorPagination
    scopes = {"post": Scope.COMPLIANCE_WRITE}

    @extend_schema(
        operation_id="list_incidents",
        responses={200: IncidentOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        return paginated_response(
            request=request,
            order=Order(("-aware_at", "pk")),
            items=incident_list(),
            serialize=lambda page: IncidentOutputSerializer(page, many=True).data,
        )

    @extend_schema(
        operation_id="create_incident",
        request=IncidentInputSerializer,
        responses={201: IncidentOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        data = IncidentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        incident = incident_create(
            actor=request_user(request), data=data.validated_data
        )
        response = created(
            IncidentOutputSerializer(incident).data,
            location=reverse("incident-detail", args=[incident.pk]),
        )
        return with_etag(response, incident_etag(incident))


class IncidentDetailApi(ApiView):
    """One incident, with an `ETag`; a change names it in `If-Match` (412 if the
    incident changed since, 428 without)."""

    permission_classes = [Governance]
    scopes = {"patch": Scope.COMPLIANCE_WRITE}
    etag_methods = frozenset({"get", "patch"})

    @extend_schema(
        operation_id="get_incident", responses={200: IncidentOutputSerializer}
    )
    def get(self, request: Request, incident_id: UUID) -> Response:
        return _incident_answer(incident_get(incident_id=incident_id))

    @extend_schema(
        operation_id="update_incident",
        request=IncidentInputSerializer,
        responses={200: IncidentOutputSerializer},
    )
    def patch(self, request: Request, incident_id: UUID) -> Response:
        incident = incident_get(incident_id=incident_id)
        version = if_match(request)
        data = IncidentInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        incident = incident_update(
            actor=request_user(request),
            incident=incident,
            data=data.validated_data,
            if_match=version,
        )
        return _incident_answer(incident)


class IncidentTransitionApi(ApiView):
    """Move the incident on: contained, resolved, ..."""

    permission_classes = [Governance]
    scopes = {"post": Scope.COMPLIANCE_WRITE}

    class InputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=IncidentStatus.choices)
        note = serializers.CharField(required=False, allow_blank=True, max_length=500)

    @extend_schema(
        operation_id="change_incident_status",
        request=InputSerializer,
        responses={200: IncidentOutputSerializer},
    )
    def post(self, request: Request, incident_id: UUID) -> Response:
        incident = incident_get(incident_id=incident_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        incident = incident_transition(
            actor=request_user(request), incident=incident, **data.validated_data
        )
        return _incident_answer(incident)


class IncidentDeadlinesApi(ApiView):
    """Every legal deadline that applies, earliest first (recorded ones once closed)."""

    permission_classes = [Governance]

    class OutputSerializer(serializers.Serializer):
        rule = serializers.CharField(source="rule_code")
        regime = serializers.CharField()
        jurisdiction = serializers.CharField()
        audience = serializers.CharField()
        due_at = serializers.DateTimeField(allow_null=True)
        affected = serializers.IntegerField(
            help_text="Affected people there: all but those erased before the "
            "incident (those erased since are counted)."
        )
        status = serializers.ChoiceField(
            choices=DEADLINE_STATUSES,
            help_text="open until notified; met when notified by `due_at` (or it has "
            "no fixed time), met_late when after it.",
        )
        notified_at = serializers.DateTimeField(
            allow_null=True,
            help_text="When they were told: the notification recorded, or for "
            "people the last notice sent once every notice has finished.",
        )
        recipient = serializers.CharField(help_text="Whom: empty while open.")
        reference = serializers.CharField()
        missed = serializers.BooleanField(
            help_text="Overdue: still open and `due_at` has passed."
        )
        exempt = serializers.BooleanField()
        legal_source = serializers.CharField()
        note = serializers.CharField()

    @extend_schema(
        operation_id="list_incident_deadlines",
        responses={200: OutputSerializer(many=True)},
    )
    def get(self, request: Request, incident_id: UUID) -> Response:
        incident = incident_get(incident_id=incident_id)
        return Response(
            self.OutputSerializer(deadlines_for(incident=incident), many=True).data
        )


class IncidentAffectedApi(ApiView):
    """How many customers the incident affects, by place."""

    permission_classes = [Governance]

    class OutputSerializer(serializers.Serializer):
        total = serializers.IntegerField(
            help_text="Affected: all the selection matched but those erased before "
            "the incident (those erased since are counted); this decides the "
            "thresholds."
        )
        by_place = serializers.ListField(child=serializers.DictField())
        erased_before_notice = serializers.IntegerField(
            help_text="Matched, but erased before any notice was queued: sent nothing."
        )
        erased_before_incident = serializers.IntegerField(
            help_text="Matched, but erased before the incident occurred (or, when "
            "that is not known, was detected): their data was gone; not in `total`."
        )
        erased_since_incident = serializers.IntegerField(
            help_text="Matched and erased after it occurred: in `total` (their data "
            "was exposed), but not notified: no one is left to tell."
        )

    @extend_schema(
        operation_id="get_incident_affected", responses={200: OutputSerializer}
    )
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
                **{
                    f"erased_{when}": n
                    for when, n in affected_erased_counts(incident=incident).items()
                },
            }
        )


class IncidentNotifiedApi(ApiView):
    """Record that the body a deadline names was told (the authority, an attorney
    general, or the people by other means): once per deadline; a second record is a
    409 (code `already_notified`), as is any record on a resolved incident."""

    permission_classes = [Governance]
    scopes = {"post": Scope.COMPLIANCE_WRITE}

    class InputSerializer(serializers.Serializer):
        rule = serializers.CharField(max_length=50, help_text="The deadline's rule.")
        audience = serializers.ChoiceField(choices=Audience.choices)
        notified_at = serializers.DateTimeField()
        recipient = serializers.CharField(max_length=200)
        reference = serializers.CharField(
            max_length=200, required=False, allow_blank=True
        )

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        rule = serializers.CharField(source="rule_code")
        audience = serializers.ChoiceField(choices=Audience.choices)
        notified_at = serializers.DateTimeField()
        recipient = serializers.CharField()
        reference = serializers.CharField()
        recorded_by = serializers.CharField(source="recorded_by.username")
        recorded_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="record_incident_notification",
        request=InputSerializer,
        responses={201: OutputSerializer},
    )
    def post(self, request: Request, incident_id: UUID) -> Response:
        incident = incident_get(incident_id=incident_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        record = deadline_notified_record(
            actor=request_user(request),
            incident=incident,
            rule_code=values["rule"],
            audience=values["audience"],
            notified_at=values["notified_at"],
            recipient=values["recipient"],
            reference=values.get("reference", ""),
        )
        return created(
            self.OutputSerializer(record).data,
            location=reverse("incident-deadlines", args=[incident.pk]),
        )


class IncidentNotificationsApi(ApiView):
    """Notification progress (GET), or queue and send the notices (POST)."""

    permission_classes = [Governance]
    scopes = {"post": Scope.COMPLIANCE_WRITE}

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
            help_text="Customers erased before any notice was queued: sent nothing."
        )

    @extend_schema(
        operation_id="get_incident_notifications", responses={200: OutputSerializer}
    )
    def get(self, request: Request, incident_id: UUID) -> Response:
        incident = incident_get(incident_id=incident_id)
        progress = notification_progress(incident=incident)
        return Response(self.OutputSerializer(progress).data)

    @extend_schema(
        operation_id="send_incident_notifications",
        request=None,
        responses={202: OutputSerializer},
    )
    def post(self, request: Request, incident_id: UUID) -> Response:
        incident = incident_get(incident_id=incident_id)
        incident_notify(actor=request_user(request), incident=incident)
        progress = notification_progress(incident=incident)
        return Response(self.OutputSerializer(progress).data, status=202)
