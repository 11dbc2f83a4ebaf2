from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from django.db.models import Count, Q, QuerySet
from django.utils import dateformat, timezone

from apps.core.errors import NotFound
from apps.customers.models import Customer
from apps.customers.selectors import BackupCopiesEnd, customer_backup_copies_end
from apps.inventory.selectors import recipients_received_data
from apps.requests.models import OPEN_STATUSES, DataRequest, RequestKind
from apps.webhooks.selectors import art19_passed_on_for_request


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


# What an erased customer is told about the copies of their data in backups.
RESTORE_PROMISE = (
    "If we ever restore a backup, your erasure is applied again before the system "
    "is used."
)


@dataclass(frozen=True)
class BackupsStatement:
    unreadable_on: date | None  # the day, in TIME_ZONE; None when none is set yet
    text: str


def erasure_backups_statement(
    *, customer: Customer, prospective: bool = False
) -> BackupsStatement:
    """What `customer` is told about the copies of their data in backups once it is
    erased (the certificate), or if it were erased now (`prospective`, My data): the
    day the last of them becomes unreadable (the retirement of the master key their
    data key was last wrapped under, as the key ring does it) and what a restore does
    (`reapply_erasures`, from the journal)."""
    end = customer_backup_copies_end(customer=customer)
    sentence = _backups_sentence(end)
    if prospective:
        sentence = f"If your data is erased now, {sentence[0].lower()}{sentence[1:]}"
    return BackupsStatement(
        unreadable_on=timezone.localdate(end.on) if end else None,
        text=f"{sentence} {RESTORE_PROMISE}",
    )


def _backups_sentence(end: BackupCopiesEnd | None) -> str:
    if end is None:
        return (
            "Copies of your data in our backups stay readable until the key they are "
            "locked with is retired; no date is set for that yet."
        )
    day = dateformat.format(timezone.localdate(end.on), "j F Y")
    if end.destroyed_by_ring and end.done:
        return (
            "Copies of your data in our backups were locked with a key that was "
            f"destroyed on {day}: they can no longer be opened."
        )
    if end.destroyed_by_ring:
        return (
            "Copies of your data in our backups are locked with a key that is due to "
            f"be destroyed on {day}; from then on they can no longer be opened."
        )
    if end.done:
        return (
            "Copies of your data in our backups are locked with a key that was "
            f"retired on {day}; once our administrators have removed it from our "
            "systems, they can no longer be opened."
        )
    return (
        "Copies of your data in our backups are locked with a key that is due to be "
        f"retired on {day}; our administrators then remove it from our systems, and "
        "from then on those copies can no longer be opened."
    )


# The requests queue's due filters (`?due=`): open requests past their due date, and
# those falling due within the next 7 days.
DUE_SOON = timedelta(days=7)
DUE_FILTERS = {"overdue": "Overdue", "week": "Due within 7 days"}


def request_queue_due(*, due: str, at: datetime | None = None) -> QuerySet[DataRequest]:
    """Open requests by due date: overdue ones ("overdue"), or those due within 7
    days and not overdue yet ("week"). Raises KeyError for another filter."""
    at = at or timezone.now()
    condition = {
        "overdue": Q(due_at__lte=at),
        "week": Q(due_at__gt=at, due_at__lte=at + DUE_SOON),
    }[due]
    return request_queue().filter(condition)


def request_due_counts(*, at: datetime | None = None) -> dict[str, int]:
    """How many open requests are overdue, and how many fall due within 7 days (not
    overdue yet): one query over the open ones (index dsr_queue)."""
    at = at or timezone.now()
    return DataRequest.objects.filter(status__in=OPEN_STATUSES).aggregate(
        overdue=Count("pk", filter=Q(due_at__lte=at)),
        week=Count("pk", filter=Q(due_at__gt=at, due_at__lte=at + DUE_SOON)),
    )


@dataclass(frozen=True)
class PassedOnRow:
    """A recipient that received the customer's data, and what of this request's
    erasure or correction was passed on to it (GDPR art. 19): through its endpoint
    (`type`, `status`, `delivered_at`), or nothing (`has_endpoint` False: staff tell
    it themselves)."""

    recipient: str
    has_endpoint: bool
    type: str = ""
    status: str = ""
    delivered_at: datetime | None = None


def request_passed_on(*, request: DataRequest) -> list[PassedOnRow]:
    """Each recipient that received the customer's data (an allowed share in the
    inventory) or was sent this request's erasure or correction: one row per
    delivery to it (its status and time), or one row saying nothing went (no
    endpoint); by recipient name. Empty for other kinds of request."""
    if request.kind not in (RequestKind.ERASURE, RequestKind.RECTIFICATION):
        return []
    rows = [
        PassedOnRow(
            recipient=p.recipient,
            has_endpoint=True,
            type=p.type,
            status=p.status,
            delivered_at=p.delivered_at,
        )
        for p in art19_passed_on_for_request(request_id=request.pk)
    ]
    sent_to = {row.recipient for row in rows}
    if request.customer_id is not None:
        rows.extend(
            PassedOnRow(recipient=r.name, has_endpoint=r.has_endpoint)
            for r in recipients_received_data(customer_id=request.customer_id)
            if r.name not in sent_to
        )
    return sorted(rows, key=lambda row: row.recipient)
