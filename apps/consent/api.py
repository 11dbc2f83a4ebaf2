import uuid
from uuid import UUID

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from apps.access.selectors import customer_get_for_staff, customer_of
from apps.accounts.models import STAFF_ROLES, Role
from apps.accounts.permissions import (
    ensure_role,
    has_role,
    request_user,
    role_permission,
)
from apps.accounts.scopes import Scope
from apps.consent.errors import ConsentError
from apps.consent.models import ConsentSource, OptInRequest
from apps.consent.selectors import (
    audience_allowed_ids,
    audience_csv_chunks,
    consent_overview_for_customer,
    consent_states_changed_since,
    purpose_get_active,
)
from apps.consent.services import consent_grant, consent_withdraw, unsubscribe_url
from apps.core.api import ApiView
from apps.core.pagination import CursorPagination, paginated_response
from apps.core.reasons import REASON_MIN_LENGTH
from apps.core.replica import replica_stream
from apps.core.sync import SYNC_ORDER, UpdatedSinceSerializer, settled

AUDIENCE_MAX_IDS = 100_000


class CustomerConsentsApi(ApiView):
    """The customer's consent per purpose; staff may change one on the customer's
    behalf (assigned support agents and privacy admins), with a reason.

    A grant of a purpose that needs double opt-in is 202: the customer is asked by
    email to confirm, and the purpose shows `pending` until they do."""

    permission_classes = [role_permission(*STAFF_ROLES)]
    scopes = {"post": Scope.CUSTOMERS_WRITE}

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
        source = serializers.ChoiceField(  # type: ignore[assignment]
            choices=ConsentSource.choices, source="state.source", allow_null=True
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

    @extend_schema(
        operation_id="list_customer_consents",
        responses={200: OutputSerializer(many=True)},
    )
    def get(self, request: Request, customer_id: UUID) -> Response:
        customer = customer_of(
            customer_get_for_staff(actor=request_user(request), customer_id=customer_id)
        )
        return Response(self.OutputSerializer(self._rows(customer), many=True).data)

    @extend_schema(
        operation_id="change_customer_consent",
        request=InputSerializer,
        responses={
            200: OpenApiResponse(
                OutputSerializer(many=True), description="Changed: every purpose."
            ),
            202: OpenApiResponse(
                OutputSerializer(many=True),
                description="Asked: the purpose needs the customer's confirmation "
                "(double opt-in); it shows `pending` until they confirm.",
            ),
        },
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


def _purpose(code: object):
    purpose = purpose_get_active(code=code) if isinstance(code, str) else None
    if purpose is None:
        raise ConsentError("Unknown purpose.", field="purpose")
    return purpose


class ConsentChangesApi(ApiView):
    """Every customer's answer per purpose that changed, oldest change first: grants,
    withdrawals, unsubscribes, Global Privacy Control. Ids and states only. For the
    systems that keep their own copy of who may be contacted: `next` is never null;
    keep it and follow it later (or ask again with `updated_since`). An erasure is in
    the customers' feed (`GET /api/v1/customers/changes/`), which these systems may
    read too."""

    permission_classes = [CanQueryAudience]
    pagination_class = CursorPagination
    scopes = {"get": Scope.AUDIENCE}
    query_serializers = {"get": UpdatedSinceSerializer}

    class OutputSerializer(serializers.Serializer):
        customer = serializers.UUIDField(source="customer_id")
        purpose = serializers.CharField(source="purpose.code")
        granted = serializers.BooleanField(help_text="The customer's last answer.")
        counts = serializers.SerializerMethodField(
            help_text="Whether the customer may be contacted for it now: granted, "
            "under a notice no later one changed materially, not erased and not "
            "restricted."
        )
        customer_erased = serializers.BooleanField()
        customer_restricted = serializers.BooleanField(
            help_text="The customer's data is restricted (GDPR art. 18): in no "
            "audience until the restriction is lifted."
        )
        # The API's "source" key (see CustomerConsentsApi.OutputSerializer).
        source = serializers.ChoiceField(  # type: ignore[assignment]
            choices=ConsentSource.choices
        )
        notice_version = serializers.IntegerField()
        updated_at = serializers.DateTimeField()

        def get_counts(self, state) -> bool:
            return bool(
                state.grant_counts
                and not state.customer_erased
                and not state.customer_restricted
            )

    @extend_schema(
        operation_id="list_consent_changes",
        responses={200: OutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        changes = consent_states_changed_since(since=self.query.get("updated_since"))
        return paginated_response(
            request=request,
            items=settled(changes),
            order=SYNC_ORDER,
            serialize=lambda page: self.OutputSerializer(page, many=True).data,
            resumable=True,
        )


class AudienceApi(ApiView):
    """Which of these customers (up to 100,000) may be contacted for a purpose, for
    the systems that send marketing; with `include_unsubscribe: true` each one's
    unsubscribe URL too. Every customer allowed for a purpose:
    `GET /api/v1/consent/audience/{purpose}.csv`."""

    permission_classes = [CanQueryAudience]
    scopes = {"post": Scope.AUDIENCE}
    read_only_methods = frozenset({"post"})

    class InputSerializer(serializers.Serializer):
        purpose = serializers.SlugField()
        customer_ids = serializers.ListField(
            child=serializers.UUIDField(), max_length=AUDIENCE_MAX_IDS
        )
        include_unsubscribe = serializers.BooleanField(required=False, default=False)

    class OutputSerializer(serializers.Serializer):
        purpose = serializers.CharField()
        allowed = serializers.ListField(child=serializers.UUIDField())
        unsubscribe = serializers.DictField(
            child=serializers.URLField(), required=False
        )

    @extend_schema(
        operation_id="query_audience",
        request=InputSerializer,
        responses={200: OutputSerializer},
    )
    def post(self, request: Request) -> Response:
        # Parsed by hand: a DRF UUIDField over 100,000 ids costs more than the query.
        body = request.data if isinstance(request.data, dict) else {}
        purpose = _purpose(body.get("purpose"))
        if "customer_ids" not in body:
            raise ConsentError(
                "Give a list of customer ids; every customer allowed for the purpose "
                f"is GET /api/v1/consent/audience/{purpose.code}.csv.",
                field="customer_ids",
                code="required",
            )
        ids = _parse_ids(body["customer_ids"])
        allowed = audience_allowed_ids(purpose=purpose, customer_ids=ids)
        result: dict = {"purpose": purpose.code, "allowed": [str(i) for i in allowed]}
        if body.get("include_unsubscribe") is True:
            result["unsubscribe"] = {
                str(i): unsubscribe_url(customer_id=i, purpose_code=purpose.code)
                for i in allowed
            }
        return Response(result)


class CsvRenderer(BaseRenderer):
    """Lets a client ask for `text/csv` (the stream renders itself)."""

    media_type = "text/csv"
    format = "csv"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data


class AudienceExportApi(ApiView):
    """Every customer id allowed for a purpose, as CSV (`customer_id` heading, one
    id a line), streamed: millions of rows in constant memory."""

    permission_classes = [CanQueryAudience]
    scopes = {"get": Scope.AUDIENCE}
    renderer_classes = [JSONRenderer, CsvRenderer]

    def finalize_response(self, request, response, *args, **kwargs):
        if isinstance(response, Response):
            # An error: JSON in the envelope, whatever the client accepts.
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(
        operation_id="export_audience_csv",
        responses={
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR, description="`customer_id`, then one id a line."
            )
        },
    )
    def get(self, request: Request, purpose: str) -> StreamingHttpResponse:
        found = _purpose(purpose)

        def rows():
            yield "customer_id\n"
            yield from audience_csv_chunks(purpose=found)

        # Streamed after this method returns: the routing goes with each chunk.
        response = StreamingHttpResponse(replica_stream(rows), content_type="text/csv")
        response["Content-Disposition"] = (
            f'attachment; filename="audience-{found.code}.csv"'
        )
        return response
