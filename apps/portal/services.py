"""Customer accounts for the self-service pages.

Lock order (apps/core/db.py): the customer, then their user, then the audit chain.
"""

from django.db import transaction

from apps.accounts.errors import AccountError
from apps.accounts.models import User
from apps.accounts.services import user_ensure_customer
from apps.audit import services as audit
from apps.core.errors import DomainError
from apps.customers.models import Customer
from apps.customers.services import customer_lock, customer_user_link


class PortalError(DomainError):
    code = "portal_invalid"


@transaction.atomic
def customer_account_enable(
    *, actor: User | None, customer: Customer, password: str
) -> User:
    """Let a customer sign in with their email and this password. Raises PortalError."""
    customer = customer_lock(customer_id=customer.pk, with_data_key=False)
    if customer.is_erased:
        raise PortalError("This customer was erased.")
    try:
        user = user_ensure_customer(
            user=customer.user, username=f"c-{customer.pk}", password=password
        )
    except AccountError as exc:
        raise PortalError(exc.message, field=exc.field) from None
    customer_user_link(customer=customer, user=user)
    audit.record(actor=actor, action="customer.account_enabled", target=customer)
    return user
