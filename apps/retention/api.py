"""The retention API: a customer's erasure (crypto-shredding), refused under a legal
hold. Who may see the customer, and what the answer shows, is apps.access's."""

from uuid import UUID

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from apps.access.selectors import customer_get_for_staff, customer_of
from apps.access.serializers import CustomerOutputSerializer
from apps.access.services import customers_read
from apps.accounts.models import STAFF_ROLES, Role
from apps.accounts.permissions import ensure_role, request_user, role_permission
from apps.accounts.scopes import Scope
from apps.core.api import ApiView
from apps.retention.services import customer_erase


class CustomerEraseApi(ApiView):
    """Crypto-shred: destroys the customer's data key; only non-PII columns remain.
    A customer under a legal hold is refused (409, code `legal_hold`)."""

    permission_classes = [role_permission(*STAFF_ROLES)]
    scopes = {"post": Scope.CUSTOMERS_WRITE}

    @extend_schema(
        operation_id="erase_customer",
        request=None,
        responses={200: CustomerOutputSerializer},
    )
    def post(self, request: Request, customer_id: UUID) -> Response:
        actor = request_user(request)
        found = customer_get_for_staff(actor=actor, customer_id=customer_id)
        ensure_role(actor, Role.PRIVACY_ADMIN)
        self.idempotency_subject = customer_id
        customer = customer_erase(actor=actor, customer=customer_of(found))
        [view] = customers_read(actor=actor, customers=[customer])
        return Response(view)
