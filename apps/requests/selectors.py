from datetime import datetime
from uuid import UUID

from django.db.models import QuerySet
from django.utils import timezone

from apps.core.errors import NotFound
from apps.customers.models import Customer
from apps.requests.models import OPEN_STATUSES, DataRequest


def request_queue(*, include_closed: bool = False) -> QuerySet[DataRequest]:
    """Requests by due date, open ones first (the privacy admins' queue)."""
    requests = DataRequest.objects.all()
    if not include_closed:
        requests = requests.filter(status__in=OPEN_STATUSES)
    return requests.order_by("due_at")


def requests_changed_since(*, since: datetime | None) -> QuerySet[DataRequest]:
    """Every request, open and closed, changed at or after `since` (all without it),
    by `updated_at`, which every write of the row moves: opening, each transition, an
    extension, completion, the export. Unordered: the caller orders and pages by
    ("updated_at", "pk") (index dsr_updated)."""
    requests = DataRequest.objects.all()
    if since is not None:
        requests = requests.filter(updated_at__gte=since)
    return requests


def request_overdue_count() -> int:
    return DataRequest.objects.filter(
        status__in=OPEN_STATUSES, due_at__lte=timezone.now()
    ).count()


def request_get(*, request_id: UUID | str) -> DataRequest:
    """One data request by id. Raises NotFound."""
    try:
        return DataRequest.objects.get(pk=request_id)
    except (DataRequest.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such request.") from None


def requests_for_customer(*, customer: Customer) -> QuerySet[DataRequest]:
    """The customer's requests, newest first."""
    return DataRequest.objects.filter(customer=customer).order_by("-received_at")
