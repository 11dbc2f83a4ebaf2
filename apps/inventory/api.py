from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.models import STAFF_ROLES, Role
from apps.accounts.permissions import ensure_role, request_user, role_permission
from apps.accounts.scopes import Scope
from apps.consent.selectors import purpose_get_active
from apps.core.api import ApiView
from apps.customers.registry import DataCategory
from apps.inventory.models import Recipient, System
from apps.inventory.selectors import recipient_list, system_list
from apps.inventory.services import InventoryError, inventory_save


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


class RecipientSerializer(serializers.Serializer):
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
                recipient_list(active_only=False), many=True
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
