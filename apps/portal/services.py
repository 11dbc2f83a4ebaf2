"""Customer accounts for the self-service pages.

Lock order (apps/core/db.py): the customer, then their user, then the audit chain.
"""

from django.contrib.auth import password_validation
from django.db import transaction

from apps.accounts.models import Role, User
from apps.audit import services as audit
from apps.core.errors import DomainError
from apps.customers.models import Customer


class PortalError(DomainError):
    code = "portal_invalid"


@transaction.atomic
def customer_account_enable(*, actor, customer: Customer, password: str) -> User:
    """Let a customer sign in with their email and this password. Raises PortalError."""
    customer = Customer.objects.select_for_update(no_key=True).get(pk=customer.pk)
    if customer.is_erased:
        raise PortalError("This customer was erased.")
    user = customer.user or User(username=f"c-{customer.pk}", role=Role.CUSTOMER)
    try:
        password_validation.validate_password(password, user)
    except Exception as exc:  # ValidationError: messages never echo the password
        raise PortalError(
            " ".join(getattr(exc, "messages", [])), field="password"
        ) from None
    user.set_password(password)
    user.is_active = True
    user.save()
    if customer.user_id != user.pk:
        customer.user = user
        customer.save(update_fields=["user"])
    audit.record(actor=actor, action="customer.account_enabled", target=customer)
    return user
