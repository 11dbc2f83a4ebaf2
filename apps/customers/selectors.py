"""Reads of customer records, and their presentation with masking."""

from typing import Any
from uuid import UUID

from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.customers.errors import CustomerError
from apps.customers.masking import mask_field
from apps.customers.models import Customer
from apps.customers.registry import PII_FIELD_NAMES
from apps.customers.validation import clean_email


def customer_queryset() -> QuerySet[Customer]:
    """Customers without their data keys: list pages unwrap a whole page's keys with
    one query (`apps.crypto.keys.data_keys_preload`) instead of joining."""
    return Customer.objects.all()


def customer_get(*, customer_id: UUID | str) -> Customer:
    """One customer by public id, data key joined. Raises NotFound."""
    try:
        return Customer.objects.select_related("data_key").get(pk=customer_id)
    except (Customer.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such customer.") from None


def customer_list(*, email: str = "", phone: str = "") -> QuerySet[Customer]:
    """Customers newest first; `email` and `phone` are exact matches via blind index."""
    customers = customer_queryset().order_by("-created_at", "pk")
    if email:
        try:
            customers = customers.filter(email_index=clean_email(email))
        except CustomerError:
            return customers.none()  # an invalid address matches no one
    if phone:
        try:
            customers = customers.filter(phone_index=phone)
        except ValueError:
            return customers.none()
    return customers


def customer_masked(customer: Customer) -> dict[str, Any]:
    """The customer's plain columns and every PII field masked."""
    data = customer_plain(customer)
    for name in PII_FIELD_NAMES:
        data[name] = mask_field(name, getattr(customer, name))
    return data


def customer_plain(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.pk,
        "status": customer.status,
        "country": customer.country,
        "region": customer.region,
        "created_at": customer.created_at,
        "last_activity_at": customer.last_activity_at,
        "closed_at": customer.closed_at,
        "erased": customer.is_erased,
    }


def customer_count() -> int:
    return Customer.objects.count()


def customer_find_by_email(*, email: str) -> Customer | None:
    """The (not erased) customer with this exact email, through the blind index."""
    try:
        address = clean_email(email)
    except CustomerError:
        return None
    return (
        Customer.objects.select_related("data_key", "user")
        .filter(email_index=address, erased_at__isnull=True)
        .first()
    )
