from uuid import UUID

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts.models import Role
from apps.accounts.permissions import role_permission
from apps.core.pagination import paginated_response
from apps.customers.registry import PII_FIELD_NAMES
from apps.customers.selectors import customer_get, customer_list, customer_masked
from apps.customers.services import (
    customer_close,
    customer_create,
    customer_erase,
    customer_reveal,
    customer_update,
)

CustomerAdminOnly = role_permission(Role.PRIVACY_ADMIN)


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


class CustomerOutputSerializer(serializers.Serializer):
    """A customer with every PII field masked (`j•••@example.com`, `•••• 1234`, ...)."""

    id = serializers.UUIDField()
    status = serializers.CharField()
    country = serializers.CharField()
    region = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_activity_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    erased = serializers.BooleanField()
    full_name = serializers.CharField(allow_null=True)
    email = serializers.CharField(allow_null=True)
    phone = serializers.CharField(allow_null=True)
    address_line = serializers.CharField(allow_null=True)
    city = serializers.CharField(allow_null=True)
    postal_code = serializers.CharField(allow_null=True)
    date_of_birth = serializers.CharField(allow_null=True)
    national_id = serializers.CharField(allow_null=True)
    notes = serializers.CharField(allow_null=True)
    payment_token = serializers.CharField(allow_null=True)
    card_last4 = serializers.CharField(allow_null=True)


def _masked(customer) -> dict:
    return CustomerOutputSerializer(customer_masked(customer)).data


class CustomerListCreateApi(APIView):
    permission_classes = [CustomerAdminOnly]

    class PaginatedOutputSerializer(serializers.Serializer):
        count = serializers.IntegerField()
        next = serializers.URLField(allow_null=True)
        previous = serializers.URLField(allow_null=True)
        results = CustomerOutputSerializer(many=True)

    @extend_schema(
        parameters=[
            OpenApiParameter("email", str, description="Exact email (blind index)."),
            OpenApiParameter("phone", str, description="Exact phone (blind index)."),
            OpenApiParameter("page", int),
            OpenApiParameter("page_size", int),
        ],
        responses={200: PaginatedOutputSerializer},
    )
    def get(self, request: Request) -> Response:
        customers = customer_list(
            email=request.query_params.get("email", ""),
            phone=request.query_params.get("phone", ""),
        )
        return paginated_response(
            request=request,
            view=self,
            items=customers,
            serialize=lambda page: [customer_masked(c) for c in page],
        )

    @extend_schema(
        request=CustomerInputSerializer, responses={201: CustomerOutputSerializer}
    )
    def post(self, request: Request) -> Response:
        data = CustomerInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_create(actor=request.user, data=data.validated_data)
        return Response(_masked(customer), status=201)


class CustomerDetailApi(APIView):
    permission_classes = [CustomerAdminOnly]

    @extend_schema(responses={200: CustomerOutputSerializer})
    def get(self, request: Request, customer_id: UUID) -> Response:
        return Response(_masked(customer_get(customer_id=customer_id)))

    @extend_schema(
        request=CustomerInputSerializer, responses={200: CustomerOutputSerializer}
    )
    def patch(self, request: Request, customer_id: UUID) -> Response:
        customer = customer_get(customer_id=customer_id)
        data = CustomerInputSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        customer = customer_update(
            actor=request.user, customer=customer, data=data.validated_data
        )
        return Response(_masked(customer))


class CustomerRevealApi(APIView):
    """Full values of some fields, for a reason of at least 10 characters. Audited."""

    permission_classes = [CustomerAdminOnly]

    class InputSerializer(serializers.Serializer):
        fields = serializers.ListField(
            child=serializers.ChoiceField(choices=PII_FIELD_NAMES), allow_empty=False
        )
        reason = serializers.CharField(min_length=10, max_length=500)

    class OutputSerializer(serializers.Serializer):
        values = serializers.DictField(child=serializers.CharField(allow_null=True))

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request: Request, customer_id: UUID) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_get(customer_id=customer_id)
        values = customer_reveal(
            actor=request.user, customer=customer, **data.validated_data
        )
        return Response({"values": values})


class CustomerCloseApi(APIView):
    permission_classes = [CustomerAdminOnly]

    @extend_schema(request=None, responses={200: CustomerOutputSerializer})
    def post(self, request: Request, customer_id: UUID) -> Response:
        customer = customer_close(
            actor=request.user, customer=customer_get(customer_id=customer_id)
        )
        return Response(_masked(customer))


class CustomerEraseApi(APIView):
    """Crypto-shred: destroys the customer's data key; only non-PII columns remain."""

    permission_classes = [CustomerAdminOnly]

    @extend_schema(request=None, responses={200: CustomerOutputSerializer})
    def post(self, request: Request, customer_id: UUID) -> Response:
        customer = customer_erase(
            actor=request.user, customer=customer_get(customer_id=customer_id)
        )
        return Response(_masked(customer))
