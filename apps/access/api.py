"""The access API: staff read customers as the access policy lets them (governance
roles: everyone; agents: the customers of their open interactions), each read logged;
reveals; a customer's access log; interactions; the contact relay's webhook."""

from uuid import UUID

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response

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
from apps.accounts.permissions import (
    ensure_role,
    has_role,
    request_user,
    role_permission,
)
from apps.accounts.scopes import Scope
from apps.accounts.selectors import user_get_by_username
from apps.core.api import ApiView, created, if_match, with_etag
from apps.core.errors import DomainError
from apps.core.pagination import CursorPagination, Order, paginated_response
from apps.core.parsers import JSONTooDeep, json_loads_bounded
from apps.core.reasons import REASON_MIN_LENGTH
from apps.core.sync import SYNC_ORDER, UpdatedSinceSerializer, settled
from apps.customers.forms import SEARCH_FIELDS
from apps.customers.models import Customer, CustomerStatus
from apps.customers.registry import PII_FIELD_NAMES
from apps.customers.selectors import customer_etag, customers_changed_since
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


def _read_one(request: Request, customer: Customer | AssignedCustomer) -> dict:
    return customers_read(actor=request_user(request), customers=[customer])[0]


SEARCH_IN_URL = (
    "Email and phone are not taken in a URL (access logs keep URLs): search with "
    "POST /api/v1/customers/search/ and a JSON body."
)


# Newest first, as customer_list orders them; the id makes the order total.
CUSTOMER_ORDER = Order(("-created_at", "pk"))


def _customers_page(request: Request, *, email: str = "", phone: str = "") -> Response:
    """The list and the search: who the caller may see, a page of them as the policy
    shows them, each read in the access log."""
    actor = request_user(request)
    search = customer_search_for_staff(actor=actor, email=email, phone=phone)
    return paginated_response(
        request=request,
        items=search.customers,
        order=CUSTOMER_ORDER,
        serialize=lambda page: customers_read(
            actor=actor, customers=page, capped=search.capped
        ),
    )


def _customer_answer(
    request: Request, customer: Customer | AssignedCustomer
) -> Response:
    """A single customer as the caller may see them, with its version (ETag)."""
    return with_etag(
        Response(_read_one(request, customer)), customer_etag(customer_of(customer))
    )


class SearchNotInUrl(ApiView):
    """Refuses email and phone in the URL, before the unknown-parameter check: this
    refusal says what to do instead (and echoes no value)."""

    def initial(self, request: Request, *args, **kwargs) -> None:
        if SEARCH_FIELDS & request.query_params.keys():
            raise DomainError(SEARCH_IN_URL, code="search_by_post")
        super().initial(request, *args, **kwargs)


class CustomerListCreateApi(SearchNotInUrl):
    """List customers (governance roles: all; agents: their assigned ones), or create
    one (privacy admins). Exact search by email or phone is
    `POST /api/v1/customers/search/`: a list URL carrying either is refused."""

    permission_classes = [StaffOnly]
    pagination_class = CursorPagination
    scopes = {"post": Scope.CUSTOMERS_WRITE}

    @extend_schema(
        operation_id="list_customers",
        responses={200: CustomerOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        return _customers_page(request)

    @extend_schema(
        operation_id="create_customer",
        request=CustomerInputSerializer,
        responses={201: CustomerOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        actor = request_user(request)
        ensure_role(actor, Role.PRIVACY_ADMIN)
        data = CustomerInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_create(actor=actor, data=data.validated_data)
        self.idempotency_subject = customer.pk
        response = created(
            _read_one(request, customer),
            location=reverse("customer-detail", args=[customer.pk]),
        )
        return with_etag(response, customer_etag(customer))


class CustomerSearchApi(SearchNotInUrl):
    """Exact search by email and/or phone, sent in the body so that neither travels in
    a URL. The same rules as the list: governance roles find anyone; support agents at
    most the match, masked, to open a case; delivery agents only among their assigned
    customers. Each result read is logged; monitoring notes the search (never its
    value)."""

    permission_classes = [StaffOnly]
    pagination_class = CursorPagination
    paginated_methods = frozenset({"post"})
    read_only_methods = frozenset({"post"})
    scopes = {"post": Scope.READ}

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
        operation_id="search_customers",
        request=InputSerializer,
        responses={200: CustomerOutputSerializer(many=True)},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return _customers_page(request, **data.validated_data)


class SyncReaders(BasePermission):
    """Governance roles, and the systems that send marketing (consent's
    `query_audience` permission): they must learn of erasures."""

    message = "Needs a governance role or the consent.query_audience permission."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return has_role(user, GOVERNANCE_ROLES) or bool(
            user and user.is_authenticated and user.has_perm("consent.query_audience")
        )


class CustomerChangesApi(ApiView):
    """What changed about which customers, as ids and states, never personal data:
    created, changed, closed, erased, restricted or no longer (governance roles, and
    the systems that send marketing). Oldest change first. `next` is never null: keep
    it, and follow it later for what changed since (or ask again with
    `updated_since`)."""

    permission_classes = [SyncReaders]
    pagination_class = CursorPagination
    scopes = {"get": (Scope.READ, Scope.AUDIENCE)}
    query_serializers = {"get": UpdatedSinceSerializer}

    class OutputSerializer(serializers.Serializer):
        id = serializers.UUIDField()
        status = serializers.ChoiceField(choices=CustomerStatus.choices)
        erased = serializers.BooleanField(source="is_erased")
        created_at = serializers.DateTimeField()
        closed_at = serializers.DateTimeField(allow_null=True)
        erased_at = serializers.DateTimeField(allow_null=True)
        restricted = serializers.BooleanField(
            help_text="A restriction (GDPR art. 18) is in force: leave the customer "
            "out of marketing and sharing. Placing or lifting one moves `updated_at`."
        )
        updated_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="list_customer_changes",
        responses={200: OutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        changes = customers_changed_since(since=self.query.get("updated_since"))
        return paginated_response(
            request=request,
            items=settled(changes),
            order=SYNC_ORDER,
            serialize=lambda page: self.OutputSerializer(page, many=True).data,
            resumable=True,
        )


class CustomerDetailApi(ApiView):
    """One customer as the caller may see them, with an `ETag`; a change (privacy
    admins) names it in `If-Match` (412 if the customer changed since, 428 without)."""

    permission_classes = [StaffOnly]
    scopes = {"patch": Scope.CUSTOMERS_WRITE}
    etag_methods = frozenset({"get", "patch"})

    @extend_schema(
        operation_id="get_customer", responses={200: CustomerOutputSerializer}
    )
    def get(self, request: Request, customer_id: UUID) -> Response:
        customer = customer_get_for_staff(
            actor=request_user(request), customer_id=customer_id
        )
        return _customer_answer(request, customer)

    @extend_schema(
        operation_id="update_customer",
        request=CustomerInputSerializer,
        responses={200: CustomerOutputSerializer},
    )
    def patch(self, request: Request, customer_id: UUID) -> Response:
        actor = request_user(request)
        found = customer_get_for_staff(actor=actor, customer_id=customer_id)
        ensure_role(actor, Role.PRIVACY_ADMIN)
        version = if_match(request)
        data = CustomerInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        self.idempotency_subject = customer_id
        customer = customer_update(
            actor=actor,
            customer=customer_of(found),
            data=data.validated_data,
            if_match=version,
        )
        return _customer_answer(request, customer)


class CustomerRevealApi(ApiView):
    """Full values of some fields for a few minutes, for a reason (10+ characters).
    Audited; a role that may not reveal a field gets 403, audited as refused. While a
    monitoring alert holds the caller's reveals suspended: 403 `reveals_suspended`."""

    permission_classes = [StaffOnly]
    scopes = {"post": Scope.CUSTOMERS_REVEAL}
    # Full values, for minutes: never kept to be replayed (a retry reveals again,
    # logged and counted again).
    secret_answer_methods = frozenset({"post"})

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

    @extend_schema(
        operation_id="reveal_customer",
        request=InputSerializer,
        responses={200: OutputSerializer},
    )
    def post(self, request: Request, customer_id: UUID) -> Response:
        actor = request_user(request)
        customer = customer_get_for_staff(actor=actor, customer_id=customer_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reveal, values = reveal_open(
            actor=actor, customer=customer, **data.validated_data
        )
        return Response({"values": values, "expires_at": reveal.expires_at})


class CustomerCloseApi(ApiView):
    """Close the customer's account (privacy admins): retention counts from here."""

    permission_classes = [StaffOnly]
    scopes = {"post": Scope.CUSTOMERS_WRITE}

    @extend_schema(
        operation_id="close_customer",
        request=None,
        responses={200: CustomerOutputSerializer},
    )
    def post(self, request: Request, customer_id: UUID) -> Response:
        actor = request_user(request)
        found = customer_get_for_staff(actor=actor, customer_id=customer_id)
        ensure_role(actor, Role.PRIVACY_ADMIN)
        self.idempotency_subject = customer_id
        customer = customer_close(actor=actor, customer=customer_of(found))
        return _customer_answer(request, customer)


class CustomerAccessLogApi(ApiView):
    """Who read this customer's data, which fields, shown how, and why
    (privacy admins and compliance officers), newest first."""

    permission_classes = [StaffOnly]
    pagination_class = CursorPagination

    class OutputSerializer(serializers.Serializer):
        at = serializers.DateTimeField(source="created_at")
        staff = serializers.CharField(source="staff.username")
        staff_role = serializers.ChoiceField(choices=Role.choices)
        # The API's "fields" key (see CustomerRevealApi.InputSerializer).
        fields = serializers.DictField(  # type: ignore[assignment]
            child=serializers.CharField()
        )
        purpose = serializers.CharField()
        interaction = serializers.UUIDField(source="interaction_id", allow_null=True)
        reveal = serializers.IntegerField(source="reveal_id", allow_null=True)

    @extend_schema(
        operation_id="list_customer_access_log",
        responses={200: OutputSerializer(many=True)},
    )
    def get(self, request: Request, customer_id: UUID) -> Response:
        actor = request_user(request)
        found = customer_get_for_staff(actor=actor, customer_id=customer_id)
        ensure_role(actor, *GOVERNANCE_ROLES)
        return paginated_response(
            request=request,
            order=Order(("-created_at", "-pk")),
            items=access_log_for_customer(customer=customer_of(found)),
            serialize=lambda page: self.OutputSerializer(page, many=True).data,
        )


# Interactions and the contact relay


class InteractionOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=InteractionKind.choices)
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


class InteractionListCreateApi(ApiView):
    """My interactions, newest first, or open one: support agents open support cases
    for themselves; privacy admins may name the `staff` (e.g. to dispatch a
    delivery)."""

    permission_classes = [StaffOnly]
    pagination_class = CursorPagination
    scopes = {"post": Scope.CASES_WRITE}

    class QuerySerializer(serializers.Serializer):
        state = serializers.ChoiceField(
            choices=["open", "all"], default="open", help_text="Default open."
        )

    query_serializers = {"get": QuerySerializer}

    class InputSerializer(serializers.Serializer):
        customer = serializers.UUIDField()
        kind = serializers.ChoiceField(choices=InteractionKind.choices)
        expires_at = serializers.DateTimeField(required=False)
        staff = serializers.CharField(required=False, max_length=150)

    @extend_schema(
        operation_id="list_interactions",
        responses={200: InteractionOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        interactions = interaction_list_for(
            actor=request_user(request),
            include_closed=self.query["state"] == "all",
        )
        return paginated_response(
            request=request,
            order=Order(("-opened_at", "pk")),
            items=interactions,
            serialize=lambda page: _out(page, many=True),
        )

    @extend_schema(
        operation_id="open_interaction",
        request=InputSerializer,
        responses={201: InteractionOutputSerializer},
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
        return created(
            _out(interaction),
            location=reverse("interaction-detail", args=[interaction.pk]),
        )


class InteractionDetailApi(ApiView):
    """One of my interactions (privacy admins: anyone's)."""

    permission_classes = [StaffOnly]
    etag_methods = frozenset({"get"})

    @extend_schema(
        operation_id="get_interaction", responses={200: InteractionOutputSerializer}
    )
    def get(self, request: Request, interaction_id: UUID) -> Response:
        actor = request_user(request)
        return Response(
            _out(interaction_get_for(actor=actor, interaction_id=interaction_id))
        )


class InteractionCloseApi(ApiView):
    permission_classes = [StaffOnly]
    scopes = {"post": Scope.CASES_WRITE}

    @extend_schema(
        operation_id="close_interaction",
        request=None,
        responses={200: InteractionOutputSerializer},
    )
    def post(self, request: Request, interaction_id: UUID) -> Response:
        actor = request_user(request)
        interaction = interaction_get_for(actor=actor, interaction_id=interaction_id)
        return Response(_out(interaction_close(actor=actor, interaction=interaction)))


class ContactRelayApi(ApiView):
    """Webhook for the telephony/email relay provider.

    Body `{"alias": ..., "caller": ...}`; headers `X-Amanah-Timestamp` (Unix seconds)
    and `X-Amanah-Signature` (hex HMAC-SHA256 of `timestamp + "." + body` under
    AMANAH_RELAY_SECRET). Unsigned, stale, future-dated or already used (each signed
    request works once; a retry is signed afresh): 401. Session closed or expired: 410.
    """

    authentication_classes: list = []
    permission_classes = [AllowAny]
    # Signed once per request by the provider (its replay guard): nothing to retry.
    read_only_methods = frozenset({"post"})

    class InputSerializer(serializers.Serializer):
        alias = serializers.CharField(max_length=64)
        caller = serializers.CharField(max_length=64)

    class OutputSerializer(serializers.Serializer):
        destination = serializers.CharField()
        caller_party = serializers.ChoiceField(choices=["staff", "customer"])

    @extend_schema(
        operation_id="route_contact",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            401: OpenApiResponse(
                description="Unsigned, stale, future-dated or already used."
            ),
            410: OpenApiResponse(description="The session is closed or expired."),
        },
        auth=[],
    )
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
