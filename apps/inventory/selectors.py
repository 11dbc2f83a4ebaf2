from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import Min, QuerySet

from apps.inventory.models import ChangeNotice, Recipient, ShareRecord, System


def system_list(*, active_only: bool = True) -> QuerySet[System]:
    systems = System.objects.all()
    return systems.filter(active=True) if active_only else systems


def recipient_list(*, active_only: bool = True) -> QuerySet[Recipient]:
    recipients = Recipient.objects.select_related("gating_purpose")
    return recipients.filter(active=True) if active_only else recipients


def change_notice_list(*, limit: int = 50) -> QuerySet[ChangeNotice]:
    return ChangeNotice.objects.order_by("-created_at")[:limit]


def recipient_endpoints_of_customers(
    *, customer_ids: Iterable[Any]
) -> dict[UUID, dict[UUID, list[str]]]:
    """{customer_id: {endpoint id: recipients' names}} of the recipients with an
    active endpoint that received each customer's data (an allowed share), for
    webhooks' art. 19 hook. Recipients sharing an endpoint are each named."""
    found: dict[UUID, dict[UUID, list[str]]] = {}
    rows = (
        ShareRecord.objects.filter(
            customer_id__in=list(customer_ids),
            allowed=True,
            recipient__endpoint__isnull=False,
            recipient__endpoint__active=True,
        )
        .values_list("customer_id", "recipient__endpoint_id", "recipient__name")
        .distinct()
    )
    for customer_id, endpoint_id, name in rows:
        found.setdefault(customer_id, {}).setdefault(endpoint_id, []).append(name)
    return found


def recipient_get(*, recipient_id: Any) -> Recipient | None:
    return Recipient.objects.select_related("endpoint").filter(pk=recipient_id).first()


def share_list(
    *, recipient: Recipient, customer_id: UUID | None = None
) -> QuerySet[ShareRecord]:
    """The shares recorded with a recipient (allowed and refused), optionally of one
    customer."""
    shares = ShareRecord.objects.filter(recipient=recipient)
    if customer_id is not None:
        shares = shares.filter(customer_id=customer_id)
    return shares


@dataclass(frozen=True)
class ReceivedBy:
    """A recipient that received a customer's data (an allowed share)."""

    recipient_id: int
    name: str
    # Whether it has an active endpoint now (erasures and corrections go to it).
    has_endpoint: bool
    first_shared_at: datetime


def recipients_received_data(*, customer_id: Any) -> list[ReceivedBy]:
    """The recipients with which the customer's data was shared (allowed shares),
    by name, each once, with whether it has an active endpoint (GDPR art. 19)."""
    rows = (
        ShareRecord.objects.filter(customer_id=customer_id, allowed=True)
        .values("recipient_id", "recipient__name", "recipient__endpoint__active")
        .annotate(first=Min("at"))
        .order_by("recipient__name", "recipient_id")
    )
    return [
        ReceivedBy(
            recipient_id=row["recipient_id"],
            name=row["recipient__name"],
            has_endpoint=bool(row["recipient__endpoint__active"]),
            first_shared_at=row["first"],
        )
        for row in rows
    ]
