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
