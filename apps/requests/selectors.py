from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from django.db.models import Count, Q, QuerySet
from django.utils import dateformat, timezone
from django.utils.translation import gettext, gettext_noop

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
RESTORE_PROMISE = gettext_noop(
    "If we ever restore a backup, your erasure is applied again before the system "
    "is used."
)

# The state of the key the copies in backups are locked with (BackupsStatement.case)
# and what the customer is told about it once erased, and (`prospective`, My data) if
# erased now; %(day)s is the day. Rendered in the reader's language when shown.
_BACKUPS_SENTENCES = {
    "no_date": (
        gettext_noop(
            "Copies of your data in our backups stay readable until the key they are "
            "locked with is retired; no date is set for that yet."
        ),
        gettext_noop(
            "If your data is erased now, copies of your data in our backups stay "
            "readable until the key they are locked with is retired; no date is set "
            "for that yet."
        ),
    ),
    "destroyed": (
        gettext_noop(
            "Copies of your data in our backups were locked with a key that was "
            "destroyed on %(day)s: they can no longer be opened."
        ),
        gettext_noop(
            "If your data is erased now, copies of your data in our backups were "
            "locked with a key that was destroyed on %(day)s: they can no longer be "
            "opened."
        ),
    ),
    "to_be_destroyed": (
        gettext_noop(
            "Copies of your data in our backups are locked with a key that is due to "
            "be destroyed on %(day)s; from then on they can no longer be opened."
        ),
        gettext_noop(
            "If your data is erased now, copies of your data in our backups are "
            "locked with a key that is due to be destroyed on %(day)s; from then on "
            "they can no longer be opened."
        ),
    ),
    "retired": (
        gettext_noop(
            "Copies of your data in our backups are locked with a key that was "
            "retired on %(day)s; once our administrators have removed it from our "
            "systems, they can no longer be opened."
        ),
        gettext_noop(
            "If your data is erased now, copies of your data in our backups are "
            "locked with a key that was retired on %(day)s; once our administrators "
            "have removed it from our systems, they can no longer be opened."
        ),
    ),
    "to_be_retired": (
        gettext_noop(
            "Copies of your data in our backups are locked with a key that is due to "
            "be retired on %(day)s; our administrators then remove it from our "
            "systems, and from then on those copies can no longer be opened."
        ),
        gettext_noop(
            "If your data is erased now, copies of your data in our backups are "
            "locked with a key that is due to be retired on %(day)s; our "
            "administrators then remove it from our systems, and from then on those "
            "copies can no longer be opened."
        ),
    ),
}


@dataclass(frozen=True)
class BackupsStatement:
    unreadable_on: date | None  # the day, in TIME_ZONE; None when none is set yet
    text: str  # in the active language
    case: str = "no_date"  # a key of _BACKUPS_SENTENCES


def erasure_backups_statement(
    *, customer: Customer, prospective: bool = False
) -> BackupsStatement:
    """What `customer` is told about the copies of their data in backups once it is
    erased (the certificate), or if it were erased now (`prospective`, My data): the
    day the last of them becomes unreadable (the retirement of the master key their
    data key was last wrapped under, as the key ring does it) and what a restore does
    (`reapply_erasures`, from the journal). In the active language."""
    end = customer_backup_copies_end(customer=customer)
    case = _backups_case(end)
    unreadable_on = timezone.localdate(end.on) if end else None
    return BackupsStatement(
        unreadable_on=unreadable_on,
        text=backups_text(case, unreadable_on, prospective=prospective),
        case=case,
    )


def backups_text(case: str, day: date | None, *, prospective: bool = False) -> str:
    """The statement about backups for `case` on `day`, in the active language."""
    sentence = gettext(_BACKUPS_SENTENCES[case][1 if prospective else 0])
    if day is not None:
        sentence = sentence % {"day": dateformat.format(day, "j F Y")}
    return f"{sentence} {gettext(RESTORE_PROMISE)}"


def certificate_backups_text(certificate: dict) -> str:
    """An erasure certificate's statement about backups in the active language (the
    certificate keeps it in English, and the case and day it was made from); one
    from before the case was kept, as written."""
    case = certificate.get("backups_case")
    if case not in _BACKUPS_SENTENCES:
        return certificate.get("backups") or ""
    day = certificate.get("backups_unreadable_on")
    return backups_text(case, date.fromisoformat(day) if day else None)


def _backups_case(end: BackupCopiesEnd | None) -> str:
    if end is None:
        return "no_date"
    if end.destroyed_by_ring:
        return "destroyed" if end.done else "to_be_destroyed"
    return "retired" if end.done else "to_be_retired"


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
