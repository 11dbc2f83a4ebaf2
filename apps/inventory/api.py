from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.access.selectors import customer_get_for_staff, customer_of
from apps.accounts.models import GOVERNANCE_ROLES, STAFF_ROLES, Role
from apps.accounts.permissions import ensure_role, request_user, role_permission
from apps.accounts.scopes import Scope
from apps.consent.selectors import purpose_get_active
from apps.core.api import ApiView, created
from apps.core.errors import NotFound
from apps.core.pagination import CursorPagination, Order, paginated_response
from apps.customers.registry import DataCategory
from apps.inventory.models import Recipient, System
from apps.inventory.selectors import (
    recipient_get,
    recipient_list,
    share_list,
    system_list,
)
from apps.inventory.services import (
    InventoryError,
    SharingRefused,
    data_share,
    inventory_save,
)


class SystemSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    country = serializers.CharField()
    data_categories = serializers.ListField(
        child=serializers.ChoiceField(choices=DataCategory.choices)
    )
    retention = serializers.CharField()
    security = serializers.CharField()
    backup_days = serializers.IntegerField()
    active = serializers.BooleanField()


class RecipientEndpointSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.URLField()


class RecipientSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    purpose = serializers.CharField()
    country = serializers.CharField()
    data_categories = serializers.ListField(
        child=serializers.ChoiceField(choices=DataCategory.choices)
    )
    safeguards = serializers.CharField()
    gating_purpose = serializers.CharField(
        source="gating_purpose.code", allow_null=True
    )
    active = serializers.BooleanField()
    endpoint = serializers.SerializerMethodField(
        help_text="Where its customers' erasures and corrections are sent (GDPR art. "
        "19), or null; set on the inventory page."
    )

    @extend_schema_field(RecipientEndpointSerializer(allow_null=True))
    def get_endpoint(self, recipient: Recipient) -> dict | None:
        endpoint = recipient.endpoint
        if endpoint is None or not endpoint.active:
            return None  # none, or deleted on the webhooks page
        return RecipientEndpointSerializer(endpoint).data


class InventoryOutputSerializer(serializers.Serializer):
    systems = SystemSerializer(many=True)
    recipients = RecipientSerializer(many=True)


class InventoryApi(ApiView):
    """Where personal data lives and who receives it (read: staff; write: privacy
    admins, audited; a change that affects customers notifies them)."""

    permission_classes = [role_permission(*STAFF_ROLES)]
    scopes = {"post": Scope.COMPLIANCE_WRITE}

    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=["system", "recipient"])
        name = serializers.CharField(max_length=100)
        description = serializers.CharField(
            max_length=300, required=False, allow_blank=True
        )
        country = serializers.CharField(max_length=2)
        data_categories = serializers.ListField(
            child=serializers.ChoiceField(choices=DataCategory.choices)
        )
        retention = serializers.CharField(
            required=False, allow_blank=True, max_length=200
        )
        security = serializers.CharField(required=False, allow_blank=True)
        backup_days = serializers.IntegerField(required=False, min_value=0)
        safeguards = serializers.CharField(
            required=False, allow_blank=True, max_length=200
        )
        gating_purpose = serializers.SlugField(required=False, allow_blank=True)
        active = serializers.BooleanField(required=False, default=True)

    def _body(self) -> dict:
        return {
            "systems": SystemSerializer(system_list(active_only=False), many=True).data,
            "recipients": RecipientSerializer(
                recipient_list(active_only=False).select_related("endpoint"),
                many=True,
            ).data,
        }

    @extend_schema(
        operation_id="get_inventory", responses={200: InventoryOutputSerializer}
    )
    def get(self, request: Request) -> Response:
        return Response(self._body())

    @extend_schema(
        operation_id="save_inventory_entry",
        request=InputSerializer,
        responses={200: InventoryOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        actor = request_user(request)
        ensure_role(actor, Role.PRIVACY_ADMIN)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        d = dict(data.validated_data)
        kind, name = d.pop("kind"), d.pop("name")
        if kind == "system":
            fields = (
                "description",
                "country",
                "data_categories",
                "retention",
                "security",
                "backup_days",
                "active",
            )
            payload = {k: d[k] for k in fields if k in d}
        else:
            gating = d.pop("gating_purpose", "")
            purpose = purpose_get_active(code=gating) if gating else None
            if gating and purpose is None:
                raise InventoryError("Unknown purpose.", field="gating_purpose")
            payload = {
                "purpose": d.get("description", ""),
                "country": d["country"],
                "data_categories": d["data_categories"],
                "safeguards": d.get("safeguards", ""),
                "gating_purpose": purpose,
                "active": d["active"],
            }
        inventory_save(
            actor=actor,
            model=System if kind == "system" else Recipient,
            name=name,
            data=payload,
        )
        return Response(self._body())


class ShareSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    recipient = serializers.IntegerField(source="recipient_id")
    customer_id = serializers.UUIDField()
    allowed = serializers.BooleanField()
    at = serializers.DateTimeField()


class RecipientSharesApi(ApiView):
    """Sharings of customers' data with a recipient of the inventory. POST records one
    (privacy admins; a token needs `customers:write`), as the system that sends the
    data does when it sends it: later erasures and corrections of the customer are
    passed on to the recipient's endpoint (GDPR art. 19). A refusal is recorded and
    audited too, and answered 403 with a code saying why: `consent` (the customer has
    not granted the recipient's gating purpose), `restricted` (the customer's data is
    restricted, GDPR art. 18), `erased`, `inactive` (the recipient). GET lists the
    recipient's shares, allowed and refused, newest first (compliance officers and
    privacy admins)."""

    permission_classes = [role_permission(*GOVERNANCE_ROLES)]
    pagination_class = CursorPagination
    scopes = {"post": Scope.CUSTOMERS_WRITE}

    class QuerySerializer(serializers.Serializer):
        customer_id = serializers.UUIDField(
            required=False, help_text="Only this customer's shares."
        )

    class InputSerializer(serializers.Serializer):
        customer_id = serializers.UUIDField()

    query_serializers = {"get": QuerySerializer}

    @staticmethod
    def _recipient(recipient_id: int) -> Recipient:
        recipient = recipient_get(recipient_id=recipient_id)
        if recipient is None:
            raise NotFound("No such recipient.")
        return recipient

    @extend_schema(
        operation_id="list_recipient_shares",
        responses={200: ShareSerializer(many=True)},
    )
    def get(self, request: Request, recipient_id: int) -> Response:
        recipient = self._recipient(recipient_id)
        return paginated_response(
            request=request,
            order=Order(("-at", "-pk")),
            items=share_list(
                recipient=recipient, customer_id=self.query.get("customer_id")
            ),
            serialize=lambda page: ShareSerializer(page, many=True).data,
        )

    @extend_schema(
        operation_id="share_with_recipient",
        request=InputSerializer,
        responses={201: ShareSerializer},
    )
    def post(self, request: Request, recipient_id: int) -> Response:
        actor = request_user(request)
        ensure_role(actor, Role.PRIVACY_ADMIN)
        recipient = self._recipient(recipient_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        customer = customer_of(
            customer_get_for_staff(
                actor=actor, customer_id=data.validated_data["customer_id"]
            )
        )
        self.idempotency_subject = customer.pk
        try:
            record = data_share(actor=actor, recipient=recipient, customer=customer)
        except SharingRefused as exc:
            # Named as the body names it.
            field = "customer_id" if exc.field == "customer" else exc.field
            raise SharingRefused(exc.message, field=field, code=exc.code) from None
        location = reverse("inventory-recipient-shares", args=[recipient.pk])
        return created(
            ShareSerializer(record).data,
            location=f"{location}?customer_id={customer.pk}",
        )
