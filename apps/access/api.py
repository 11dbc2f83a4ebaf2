"""The access API: staff read customers as the access policy lets them (governance
roles: everyone; agents: the customers of their open interactions), each read logged;
reveals; a customer's access log; interactions; the contact relay's webhook."""

from uuid import UUID

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.access.errors import AccessError, RelayError
from apps.access.models import InteractionKind
from apps.access.selectors import (
    AssignedCustomer,
    access_log_for_customer,
    customer_exists,
    customer_get_for_staff,
    customer_of,
    customer_search_for_staff,
    interaction_get_for,
    interaction_list_for,
)
from apps.access.serializers import CustomerOutputSerializer
from apps.access.services import (
    customers_read,
    interaction_close,
    interaction_open,
    relay_route,
    relay_verify,
    reveal_open,
)
from apps.accounts.models import GOVERNANCE_ROLES, STAFF_ROLES, Role
from apps.accounts.permissions import ensure_role, request_user, role_permission
from apps.accounts.selectors import user_get_by_username
from apps.core.errors import DomainError
from apps.core.pagination import Pagination, paginated_response
from apps.core.parsers import JSONTooDeep, json_loads_bounded
from apps.core.reasons import REASON_MIN_LENGTH
from apps.customers.forms import SEARCH_FIELDS
from apps.customers.models import Customer
from apps.customers.registry import PII_FIELD_NAMES
from apps.customers.services import customer_close, customer_create, customer_update

StaffOnly = role_permission(*STAFF_ROLES)


# Customers, as staff may see them


class CustomerInputSerializer(serializers.Serializer):
    country = serializers.CharField(max_length=2)
    region = serializers.CharField(max_length=6, required=False, allow_blank=True)
    full_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=32, required=False, allow_blank=True)
    address_line = serializers.CharField(
        max_length=300, required=False, allow_blank=True
    )
    city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    postal_code = serializers.CharField(max_length=20, required=False, allow_blank=True)
    date_of_birth = serializers.DateField(required=False, allow_null=True)
    national_id = serializers.CharField(max_length=50, required=False, allow_blank=True)
    notes = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    payment_token = serializers.CharField(
        max_length=200, required=False, allow_blank=True
    )
    card_last4 = serializers.CharField(max_length=4, required=False, allow_blank=True)


class CustomerPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CustomerOutputSerializer(many=True)


def _read_one(request: Request, customer: Customer | AssignedCustomer) -> dict:
    return customers_read(actor=request_user(request), customers=[customer])[0]


SEARCH_IN_URL = (
    "Email and phone are not taken in a URL (access logs keep URLs): search with "
    "POST /api/v1/customers/search/ and a JSON body."
)


def _customers_page(
    request: Request, view: APIView, *, email: str = "", phone: str = ""
) -> Response:
    """The list and the search: who the caller may see, a page of them as the policy
    shows them, each read in the access log."""
    actor = request_user(request)
    search = customer_search_for_staff(actor=actor, email=email, phone=phone)
    return paginated_response(
        request=request,
        view=view,
        items=search.customers,
        serialize=lambda page: customers_read(
            actor=actor, customers=page, capped=search.capped
        ),
    )


PAGE_PARAMETERS = [OpenApiParameter("page", int), OpenApiParameter("page_size", int)]


class CustomerListCreateApi(APIView):
    """List customers (governance roles: all; agents: their assigned ones), or create
    one (privacy admins). Exact search by email or phone is
    `POST /api/v1/customers/search/`: a list URL carrying either is refused."""

    permission_classes = [StaffOnly]

    class RefusedSerializer(serializers.Serializer):
        detail = serializers.CharField()
        code = serializers.CharField(help_text='"search_by_post"')

    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses={
            200: CustomerPageSerializer,
            400: OpenApiResponse(
                RefusedSerializer,
                description="`email` or `phone` in the URL: search by POST instead.",
            ),
        },
    )
    def get(self, request: Request) -> Response:
        if SEARCH_FIELDS & request.query_params.keys():
            raise DomainError(SEARCH_IN_URL, code="search_by_post")
        return _customers_page(request, self)

    @extend_schema(
        request=CustomerInputSerializer, responses={201: CustomerOutputSerializer}
    )
    def post(self, request: Request) -> Response:
        actor = request_user(request)
        ensure_role(actor, Role.PRIVACY_ADMIN)
        data = CustomerInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_create(actor=actor, data=data.validated_data)
        return Response(_read_one(request, customer), status=201)


class CustomerSearchApi(APIView):
    """Exact search by email and/or phone, sent in the body so that neither travels in
    a URL. The same rules as the list: governance roles find anyone; support agents at
    most the match, masked, to open a case; delivery agents only among their assigned
    customers. Each result read is logged; monitoring notes the search (never its
    value)."""

    permission_classes = [StaffOnly]

    class InputSerializer(serializers.Serializer):
        email = serializers.CharField(
            max_length=254,
            required=False,
            allow_blank=True,
            help_text="Exact email address, any case (blind index).",
        )
        phone = serializers.CharField(
            max_length=32,
            required=False,
            allow_blank=True,
            help_text="Exact phone number, in any usual format (blind index).",
        )

        def validate(self, data: dict) -> dict:
            if not (data.get("email") or data.get("phone")):
                raise serializers.ValidationError(
                    "Give an email address, a phone number or both."
                )
            return data

    @extend_schema(
        request=InputSerializer,
        parameters=PAGE_PARAMETERS,
        responses={200: CustomerPageSerializer},
    )
    def post(self, request: Request) -> Response:
        if SEARCH_FIELDS & request.query_params.keys():
            raise DomainError(SEARCH_IN_URL, code="search_by_post")
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _customers_page(request, self, **data.validated_data)


class CustomerDetailApi(APIView):
    permission_classes = [StaffOnly]

    @extend_schema(responses={200: CustomerOutputSerializer})
    def get(self, request: Request, customer_id: UUID) -> Response:
        customer = customer_get_for_staff(
            actor=request_user(request), customer_id=customer_id
        )
        return Response(_read_one(request, customer))

    @extend_schema(
        request=CustomerInputSerializer, responses={200: CustomerOutputSerializer}
    )
    def patch(self, request: Request, customer_id: UUID) -> Response:
        actor = request_user(request)
        found = customer_get_for_staff(actor=actor, customer_id=customer_id)
        ensure_role(actor, Role.PRIVACY_ADMIN)
        data = CustomerInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        customer = customer_update(
            actor=actor, customer=customer_of(found), data=data.validated_data
        )
        return Response(_read_one(request, customer))


class CustomerRevealApi(APIView):
    """Full values of some fields for a few minutes, for a reason (10+ characters).
    Audited; a role that may not reveal a field gets 403, audited as refused."""

    permission_classes = [StaffOnly]

    class InputSerializer(serializers.Serializer):
        # DRF's metaclass takes declared fields out of the class: this is the API's
        # "fields" key, not Serializer.fields.
        fields = serializers.ListField(  # type: ignore[assignment]
            child=serializers.ChoiceField(choices=PII_FIELD_NAMES), allow_empty=False
        )
        reason = serializers.CharField(min_length=REASON_MIN_LENGTH, max_length=500)

    class OutputSerializer(serializers.Serializer):
        values = serializers.DictField(child=serializers.CharField(allow_null=True))
        expires_at = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request: Request, customer_id: UUID) -> Response:
        actor = request_user(request)
        customer = customer_get_for_staff(actor=actor, customer_id=customer_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reveal, values = reveal_open(
            actor=actor, customer=customer, **data.validated_data
        )
        return Response({"values": values, "expires_at": reveal.expires_at})


class CustomerCloseApi(APIView):
    permission_classes = [StaffOnly]

    @extend_schema(request=None, responses={200: CustomerOutputSerializer})
    def post(self, request: Request, customer_id: UUID) -> Response:
        actor = request_user(request)
        found = customer_get_for_staff(actor=actor, customer_id=customer_id)
        ensure_role(actor, Role.PRIVACY_ADMIN)
        customer = customer_close(actor=actor, customer=customer_of(found))
        return Response(_read_one(request, customer))


class CustomerAccessLogApi(APIView):
    """Who read this customer's data, which fields, shown how, and why
    (privacy admins and compliance officers)."""

    permission_classes = [StaffOnly]
    pagination_class = Pagination  # the schema shows the list as a page

    class OutputSerializer(serializers.Serializer):
        at = serializers.DateTimeField(source="created_at")
        staff = serializers.CharField(source="staff.username")
        staff_role = serializers.CharField()
        # The API's "fields" key (see CustomerRevealApi.InputSerializer).
        fields = serializers.DictField(  # type: ignore[assignment]
            child=serializers.CharField()
        )
        purpose = serializers.CharField()
        interaction = serializers.UUIDField(source="interaction_id", allow_null=True)
        reveal = serializers.IntegerField(source="reveal_id", allow_null=True)

    @extend_schema(
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: OutputSerializer(many=True)},
    )
    def get(self, request: Request, customer_id: UUID) -> Response:
        actor = request_user(request)
        found = customer_get_for_staff(actor=actor, customer_id=customer_id)
        ensure_role(actor, *GOVERNANCE_ROLES)
        return paginated_response(
            request=request,
            view=self,
            items=access_log_for_customer(customer=customer_of(found)),
            serialize=lambda page: self.OutputSerializer(page, many=True).data,
        )


# Interactions and the contact relay


class InteractionOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField()
    customer = serializers.UUIDField(source="customer_id")
    staff = serializers.CharField(source="staff.username")
    opened_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    close_reason = serializers.CharField()
    contact_alias = serializers.CharField(
        help_text="Virtual number relaying to the party."
    )
    is_open = serializers.SerializerMethodField()

    def get_is_open(self, obj) -> bool:
        return obj.is_open_at(self.context["now"])


def _out(interaction, many: bool = False):
    return InteractionOutputSerializer(
        interaction, many=many, context={"now": timezone.now()}
    ).data


class InteractionListCreateApi(APIView):
    """My interactions, or open one: support agents open support cases for themselves;
    privacy admins may name the `staff` (e.g. to dispatch a delivery)."""

    permission_classes = [StaffOnly]
    pagination_class = Pagination  # the schema shows the list as a page

    class InputSerializer(serializers.Serializer):
        customer = serializers.UUIDField()
        kind = serializers.ChoiceField(choices=InteractionKind.choices)
        expires_at = serializers.DateTimeField(required=False)
        staff = serializers.CharField(required=False, max_length=150)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "state", str, enum=["open", "all"], description="Default open."
            ),
            OpenApiParameter("page", int),
        ],
        responses={200: InteractionOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        interactions = interaction_list_for(
            actor=request_user(request),
            include_closed=request.query_params.get("state") == "all",
        )
        return paginated_response(
            request=request,
            view=self,
            items=interactions,
            serialize=lambda page: _out(page, many=True),
        )

    @extend_schema(
        request=InputSerializer, responses={201: InteractionOutputSerializer}
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        staff = None
        if data.validated_data.get("staff"):
            staff = user_get_by_username(username=data.validated_data["staff"])
            if staff is None:
                raise AccessError("No such staff member.", field="staff")
        customer = customer_exists(customer_id=data.validated_data["customer"])
        interaction = interaction_open(
            actor=request_user(request),
            customer=customer,
            kind=data.validated_data["kind"],
            staff=staff,
            expires_at=data.validated_data.get("expires_at"),
        )
        return Response(_out(interaction), status=201)


class InteractionCloseApi(APIView):
    permission_classes = [StaffOnly]

    @extend_schema(request=None, responses={200: InteractionOutputSerializer})
    def post(self, request: Request, interaction_id: UUID) -> Response:
        actor = request_user(request)
        interaction = interaction_get_for(actor=actor, interaction_id=interaction_id)
        return Response(_out(interaction_close(actor=actor, interaction=interaction)))


class ContactRelayApi(APIView):
    """Webhook for the telephony/email relay provider.

    Body `{"alias": ..., "caller": ...}`; headers `X-Amanah-Timestamp` (Unix seconds)
    and `X-Amanah-Signature` (hex HMAC-SHA256 of `timestamp + "." + body` under
    AMANAH_RELAY_SECRET). Unsigned, stale, future-dated or already used (each signed
    request works once; a retry is signed afresh): 401. Session closed or expired: 410.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class InputSerializer(serializers.Serializer):
        alias = serializers.CharField(max_length=64)
        caller = serializers.CharField(max_length=64)

    class OutputSerializer(serializers.Serializer):
        destination = serializers.CharField()
        caller_party = serializers.ChoiceField(choices=["staff", "customer"])

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, auth=[])
    def post(self, request: Request) -> Response:
        body = request._request.body  # the exact bytes that were signed
        relay_verify(
            timestamp=request.headers.get("X-Amanah-Timestamp", ""),
            signature=request.headers.get("X-Amanah-Signature", ""),
            body=body,
        )
        try:
            payload = json_loads_bounded(body)
        except JSONTooDeep as exc:
            raise RelayError(str(exc), code="too_deep") from None
        except ValueError:
            raise RelayError("The body must be JSON.", code="parse_error") from None
        data = self.InputSerializer(data=payload)
        data.is_valid(raise_exception=True)
        return Response(relay_route(**data.validated_data))
