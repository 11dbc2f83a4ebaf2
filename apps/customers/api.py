"""The customers API. Who sees what is decided by apps.access: staff see a customer only
while assigned (governance roles: everyone, masked), and each read is logged."""

from uuid import UUID

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.access.selectors import (
    access_log_for_customer,
    customer_get_for_staff,
    customer_search_for_staff,
)
from apps.access.services import customers_read, reveal_open
from apps.accounts.models import GOVERNANCE_ROLES, STAFF_ROLES, Role
from apps.accounts.permissions import ensure_role, role_permission
from apps.core.errors import DomainError
from apps.core.pagination import Pagination, paginated_response
from apps.customers.forms import SEARCH_FIELDS
from apps.customers.registry import PII_FIELD_NAMES
from apps.customers.services import (
    customer_close,
    customer_create,
    customer_update,
)
from apps.retention.services import customer_erase

StaffOnly = role_permission(*STAFF_ROLES)


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


def _pii(help_text: str = "") -> serializers.CharField:
    return serializers.CharField(allow_null=True, required=False, help_text=help_text)


class CustomerOutputSerializer(serializers.Serializer):
    """A customer as the caller may see them. A PII field is full, masked
    (`j•••@example.com`, `•••• 1234`, ...) or absent (hidden by the access policy);
    `shown` says which. `[erased]` marks a crypto-shredded value."""

    id = serializers.UUIDField()
    status = serializers.CharField()
    country = serializers.CharField()
    region = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_activity_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    erased = serializers.BooleanField()
    full_name = _pii()
    email = _pii()
    phone = _pii()
    address_line = _pii()
    city = _pii()
    postal_code = _pii()
    date_of_birth = _pii("Full date, or the birth year when masked.")
    national_id = _pii()
    notes = _pii()
    payment_token = _pii()
    card_last4 = _pii()
    shown = serializers.DictField(
        child=serializers.ChoiceField(choices=["full", "masked"]),
        help_text="For each field present: full or masked.",
    )
    reveal_expires_at = serializers.DateTimeField(required=False)


class CustomerPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = CustomerOutputSerializer(many=True)


def _read_one(request: Request, customer) -> dict:
    return customers_read(actor=request.user, customers=[customer])[0]


SEARCH_IN_URL = (
    "Email and phone are not taken in a URL (access logs keep URLs): search with "
    "POST /api/v1/customers/search/ and a JSON body."
)


def _customers_page(
    request: Request, view: APIView, *, email: str = "", phone: str = ""
) -> Response:
    """The list and the search: who the caller may see, a page of them as the policy
    shows them, each read in the access log."""
    search = customer_search_for_staff(actor=request.user, email=email, phone=phone)
    return paginated_response(
        request=request,
        view=view,
        items=search.customers,
        serialize=lambda page: customers_read(
            actor=request.user, customers=page, capped=search.capped
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
        ensure_role(request.user, Role.PRIVACY_ADMIN)
        data = CustomerInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_create(actor=request.user, data=data.validated_data)
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
        customer = customer_get_for_staff(actor=request.user, customer_id=customer_id)
        return Response(_read_one(request, customer))

    @extend_schema(
        request=CustomerInputSerializer, responses={200: CustomerOutputSerializer}
    )
    def patch(self, request: Request, customer_id: UUID) -> Response:
        customer = customer_get_for_staff(actor=request.user, customer_id=customer_id)
        ensure_role(request.user, Role.PRIVACY_ADMIN)
        data = CustomerInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        customer = customer_update(
            actor=request.user, customer=customer, data=data.validated_data
        )
        return Response(_read_one(request, customer))


class CustomerRevealApi(APIView):
    """Full values of some fields for a few minutes, for a reason (10+ characters).
    Audited; a role that may not reveal a field gets 403, audited as refused."""

    permission_classes = [StaffOnly]

    class InputSerializer(serializers.Serializer):
        fields = serializers.ListField(
            child=serializers.ChoiceField(choices=PII_FIELD_NAMES), allow_empty=False
        )
        reason = serializers.CharField(min_length=10, max_length=500)

    class OutputSerializer(serializers.Serializer):
        values = serializers.DictField(child=serializers.CharField(allow_null=True))
        expires_at = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request: Request, customer_id: UUID) -> Response:
        customer = customer_get_for_staff(actor=request.user, customer_id=customer_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reveal, values = reveal_open(
            actor=request.user, customer=customer, **data.validated_data
        )
        return Response({"values": values, "expires_at": reveal.expires_at})


class CustomerCloseApi(APIView):
    permission_classes = [StaffOnly]

    @extend_schema(request=None, responses={200: CustomerOutputSerializer})
    def post(self, request: Request, customer_id: UUID) -> Response:
        customer = customer_get_for_staff(actor=request.user, customer_id=customer_id)
        ensure_role(request.user, Role.PRIVACY_ADMIN)
        customer = customer_close(actor=request.user, customer=customer)
        return Response(_read_one(request, customer))


class CustomerEraseApi(APIView):
    """Crypto-shred: destroys the customer's data key; only non-PII columns remain.
    A customer under a legal hold is refused (409, code `legal_hold`)."""

    permission_classes = [StaffOnly]

    @extend_schema(request=None, responses={200: CustomerOutputSerializer})
    def post(self, request: Request, customer_id: UUID) -> Response:
        customer = customer_get_for_staff(actor=request.user, customer_id=customer_id)
        ensure_role(request.user, Role.PRIVACY_ADMIN)
        customer = customer_erase(actor=request.user, customer=customer)
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
        fields = serializers.DictField(child=serializers.CharField())
        purpose = serializers.CharField()
        interaction = serializers.UUIDField(source="interaction_id", allow_null=True)
        reveal = serializers.IntegerField(source="reveal_id", allow_null=True)

    @extend_schema(
        parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
        responses={200: OutputSerializer(many=True)},
    )
    def get(self, request: Request, customer_id: UUID) -> Response:
        customer = customer_get_for_staff(actor=request.user, customer_id=customer_id)
        ensure_role(request.user, *GOVERNANCE_ROLES)
        return paginated_response(
            request=request,
            view=self,
            items=access_log_for_customer(customer=customer),
            serialize=lambda page: self.OutputSerializer(page, many=True).data,
        )
