import uuid
from uuid import UUID

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.access.selectors import customer_get_for_staff, customer_of
from apps.accounts.models import STAFF_ROLES, Role
from apps.accounts.permissions import (
    ensure_role,
    has_role,
    request_user,
    role_permission,
)
from apps.consent.errors import ConsentError
from apps.consent.models import OptInRequest
from apps.consent.selectors import (
    audience_allowed_ids,
    audience_csv_chunks,
    consent_overview_for_customer,
    purpose_get_active,
)
from apps.consent.services import consent_grant, consent_withdraw, unsubscribe_url
from apps.core.reasons import REASON_MIN_LENGTH

AUDIENCE_MAX_IDS = 100_000


class CustomerConsentsApi(APIView):
    """The customer's consent per purpose; staff may change one on the customer's
    behalf (assigned support agents and privacy admins), with a reason."""

    permission_classes = [role_permission(*STAFF_ROLES)]

    class OutputSerializer(serializers.Serializer):
        purpose = serializers.CharField(source="purpose.code")
        granted = serializers.BooleanField()
        pending = serializers.BooleanField()
        updated_at = serializers.DateTimeField(
            source="state.updated_at", allow_null=True
        )
        notice_version = serializers.IntegerField(
            source="state.notice_version", allow_null=True
        )
        # DRF's metaclass takes declared fields out of the class: this is the API's
        # "source" key, not Field.source.
        source = serializers.CharField(  # type: ignore[assignment]
            source="state.source", allow_null=True
        )

    class InputSerializer(serializers.Serializer):
        purpose = serializers.SlugField()
        granted = serializers.BooleanField()
        reason = serializers.CharField(min_length=REASON_MIN_LENGTH, max_length=500)

    def _rows(self, customer):
        return [
            {
                "purpose": view.purpose,
                "granted": view.granted,
                "pending": view.pending is not None,
                "state": view.state,
            }
            for view in consent_overview_for_customer(customer=customer)
        ]

    @extend_schema(responses={200: OutputSerializer(many=True)})
    def get(self, request: Request, customer_id: UUID) -> Response:
        customer = customer_of(
            customer_get_for_staff(actor=request_user(request), customer_id=customer_id)
        )
        return Response(self.OutputSerializer(self._rows(customer), many=True).data)

    @extend_schema(
        request=InputSerializer, responses={200: OutputSerializer(many=True)}
    )
    def post(self, request: Request, customer_id: UUID) -> Response:
        actor = request_user(request)
        customer = customer_of(
            customer_get_for_staff(actor=actor, customer_id=customer_id)
        )
        ensure_role(actor, Role.SUPPORT_AGENT, Role.PRIVACY_ADMIN)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        change = consent_grant if data.validated_data["granted"] else consent_withdraw
        result = change(
            actor=actor,
            customer=customer,
            purpose_code=data.validated_data["purpose"],
            source="staff",
            reason=data.validated_data["reason"],
        )
        status = 202 if isinstance(result, OptInRequest) else 200
        return Response(
            self.OutputSerializer(self._rows(customer), many=True).data, status
        )


class CanQueryAudience(BasePermission):
    message = "Needs the privacy admin role or the consent.query_audience permission."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return has_role(user, [Role.PRIVACY_ADMIN]) or bool(
            user and user.is_authenticated and user.has_perm("consent.query_audience")
        )


def _parse_ids(raw: object) -> list[UUID]:
    if not isinstance(raw, list):
        raise ConsentError("Give a list of customer ids.", field="customer_ids")
    if len(raw) > AUDIENCE_MAX_IDS:
        raise ConsentError(
            f"At most {AUDIENCE_MAX_IDS} ids per call.", field="customer_ids"
        )
    try:
        return [uuid.UUID(str(value)) for value in raw]
    except ValueError:
        raise ConsentError("Every id must be a UUID.", field="customer_ids") from None


class AudienceApi(APIView):
    """Who may be contacted for a purpose, for the systems that send marketing.

    With `customer_ids` (up to 100,000): `{"allowed": [...]}`, plus each one's
    unsubscribe URL with `include_unsubscribe: true`. Without: a CSV stream of every
    customer id allowed for the purpose.
    """

    permission_classes = [CanQueryAudience]

    class InputSerializer(serializers.Serializer):
        purpose = serializers.SlugField()
        customer_ids = serializers.ListField(
            child=serializers.UUIDField(), required=False
        )
        include_unsubscribe = serializers.BooleanField(required=False, default=False)

    class OutputSerializer(serializers.Serializer):
        purpose = serializers.CharField()
        allowed = serializers.ListField(child=serializers.UUIDField())
        unsubscribe = serializers.DictField(
            child=serializers.URLField(), required=False
        )

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OpenApiResponse(
                OutputSerializer, description="JSON, or text/csv without customer_ids"
            )
        },
    )
    def post(self, request: Request) -> Response | StreamingHttpResponse:
        # Parsed by hand: a DRF UUIDField over 100,000 ids costs more than the query.
        body = request.data if isinstance(request.data, dict) else {}
        code = body.get("purpose")
        purpose = purpose_get_active(code=code) if isinstance(code, str) else None
        if purpose is None:
            raise ConsentError("Unknown purpose.", field="purpose")
        if "customer_ids" not in body:
            return self._stream_csv(purpose)
        ids = _parse_ids(body["customer_ids"])
        allowed = audience_allowed_ids(purpose=purpose, customer_ids=ids)
        result: dict = {"purpose": purpose.code, "allowed": [str(i) for i in allowed]}
        if body.get("include_unsubscribe") is True:
            result["unsubscribe"] = {
                str(i): unsubscribe_url(customer_id=i, purpose_code=purpose.code)
                for i in allowed
            }
        return Response(result)

    def _stream_csv(self, purpose) -> StreamingHttpResponse:
        def rows():
            yield "customer_id\n"
            yield from audience_csv_chunks(purpose=purpose)

        response = StreamingHttpResponse(rows(), content_type="text/csv")
        response["Content-Disposition"] = (
            f'attachment; filename="audience-{purpose.code}.csv"'
        )
        return response
