from uuid import UUID

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.access.selectors import customer_exists
from apps.accounts.models import Role
from apps.accounts.permissions import request_user, role_permission
from apps.accounts.scopes import Scope
from apps.core.api import ApiView, created
from apps.core.errors import DomainError
from apps.core.pagination import CursorPagination, Order, paginated_response
from apps.core.sync import SYNC_ORDER, UpdatedSinceSerializer, settled
from apps.requests.models import ObjectionTo, RequestKind, RequestStatus
from apps.requests.selectors import (
    request_get,
    request_passed_on,
    request_queue,
    requests_changed_since,
)
from apps.requests.services import due_rule_of, request_open, request_transition

PrivacyAdmins = role_permission(Role.PRIVACY_ADMIN)


class RequestOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    customer = serializers.UUIDField(source="customer_id", allow_null=True)
    kind = serializers.ChoiceField(choices=RequestKind.choices)
    objection_to = serializers.ChoiceField(
        choices=[("", "Not an objection"), *ObjectionTo.choices],
        help_text="An objection's object: direct marketing (withdrawn at once) or "
        "another use (a review, the data restricted meanwhile); empty otherwise.",
    )
    status = serializers.ChoiceField(choices=RequestStatus.choices)
    regime = serializers.CharField()
    received_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    extended = serializers.BooleanField()
    overdue = serializers.SerializerMethodField()
    outcome = serializers.CharField()
    updated_at = serializers.DateTimeField()
    due_rule_source = serializers.SerializerMethodField(
        help_text="The legal source of the due date (Amanah's default where no law "
        "sets one)."
    )

    def get_overdue(self, obj) -> bool:
        return obj.is_open and obj.due_at <= timezone.now()

    def get_due_rule_source(self, obj) -> str:
        return due_rule_of(regime=obj.regime).legal_source


class RequestOpenInputSerializer(serializers.Serializer):
    """What opening a request on a customer's behalf takes. `how_verified` is the
    service's `verification`; other inputs pass through under their own names."""

    customer = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=RequestKind.choices)
    how_verified = serializers.CharField(
        max_length=200, help_text="How you verified the customer's identity."
    )
    # Checked by the service (a field of the customer's record): a second enum of
    # the same names would collide in the schema with the reveal's.
    field = serializers.CharField(
        required=False,
        max_length=40,
        help_text="Rectification: the field to correct, e.g. `city` (the names "
        "`reveal_customer` takes).",
    )
    new_value = serializers.CharField(
        required=False,
        max_length=300,
        help_text="Rectification: the correct value (sealed under the customer's key).",
    )
    details = serializers.CharField(required=False, allow_blank=True, max_length=500)
    objection_to = serializers.ChoiceField(
        choices=ObjectionTo.choices,
        required=False,
        help_text="Objection: `marketing` or `other` (required for an objection).",
    )

    # The service's name for an input, where it differs (errors are named back).
    SERVICE_NAMES = {"how_verified": "verification"}

    def validate(self, data: dict) -> dict:
        if data.get("kind") == RequestKind.OBJECTION and not data.get("objection_to"):
            raise serializers.ValidationError(
                {
                    "objection_to": "Say what the customer objects to: `marketing` "
                    "(direct marketing) or `other` (another use of their data)."
                }
            )
        return data

    def service_kwargs(self) -> dict:
        data = dict(self.validated_data)
        data.pop("customer")
        return {self.SERVICE_NAMES.get(k, k): v for k, v in data.items()}

    @classmethod
    def input_name(cls, service_name: str | None) -> str | None:
        names = {v: k for k, v in cls.SERVICE_NAMES.items()}
        return names.get(service_name or "", service_name)


class RequestListApi(ApiView):
    """The queue of data subject requests (privacy admins): open ones by due date,
    with `all=true` closed ones too. With `updated_since`, every request changed
    since then, oldest change first, closed ones included: a system that mirrors the
    queue reads on from the `next` link of its last page.

    POST opens a request on a customer's behalf, as on the queue page, saying how you
    verified their identity (`how_verified`); its due date comes from the customer's
    law (`regime`, `due_rule_source`). An unknown customer is a 404; an erased one a
    400 naming `customer`; a request of the same kind still open for them a 409 (for
    an objection, one to the same thing: one to direct marketing is done at once). An
    objection must say what it is to (`objection_to`): without it, a 400 naming it."""

    permission_classes = [PrivacyAdmins]
    pagination_class = CursorPagination
    scopes = {"post": Scope.COMPLIANCE_WRITE}

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

    @extend_schema(
        operation_id="open_request",
        request=RequestOpenInputSerializer,
        responses={201: RequestOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        data = RequestOpenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_exists(customer_id=data.validated_data["customer"])
        self.idempotency_subject = customer.pk
        try:
            item = request_open(
                actor=request_user(request), customer=customer, **data.service_kwargs()
            )
        except DomainError as exc:
            exc.field = data.input_name(exc.field)
            raise
        return created(
            RequestOutputSerializer(item).data,
            location=reverse("request-detail", args=[item.pk]),
        )


class PassedOnSerializer(serializers.Serializer):
    recipient = serializers.CharField(help_text="The recipient's name.")
    has_endpoint = serializers.BooleanField()
    type = serializers.CharField(
        help_text="The event sent (customer.erased or customer.rectified); empty "
        "when nothing went: tell the recipient yourself."
    )
    status = serializers.CharField(
        help_text="The delivery's status (pending, delivered, dead, cancelled); "
        "empty when nothing went."
    )
    delivered_at = serializers.DateTimeField(allow_null=True)


class RequestDetailOutputSerializer(RequestOutputSerializer):
    passed_on = PassedOnSerializer(
        many=True,
        help_text="Erasure and rectification requests (GDPR art. 19): each "
        "recipient that received the customer's data, and what of this request went "
        "to it through its endpoint; empty for other kinds.",
    )


class RequestDetailApi(ApiView):
    """One data request (privacy admins), with to whom its erasure or correction
    was passed on (GDPR art. 19)."""

    permission_classes = [PrivacyAdmins]

    @extend_schema(
        operation_id="get_request", responses={200: RequestDetailOutputSerializer}
    )
    def get(self, request: Request, request_id: UUID) -> Response:
        item = request_get(request_id=request_id)
        passed_on = request_passed_on(request=item)
        return Response(
            {
                **RequestOutputSerializer(item).data,
                "passed_on": PassedOnSerializer(passed_on, many=True).data,
            }
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
