"""Reads shaped for the customer's pages."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from apps.access.selectors import access_log_reads_for_subject
from apps.access.wording import access_who, access_why
from apps.customers.models import Customer

# Reads by one staff member for one purpose with no more than this between them are
# one visit (a support session opens a record many times).
VISIT_GAP = timedelta(minutes=30)


@dataclass
class AccessVisit:
    """Consecutive reads of the customer's data by one staff member (shown by their
    role only) for one purpose."""

    role: str
    purpose: str
    first: datetime
    last: datetime
    count: int
    # Whose reads these are: to tell two staff members of one role apart, never shown.
    staff_id: int | None = field(default=None, repr=False, compare=False)

    @property
    def who(self) -> str:
        return access_who(self.role)

    @property
    def why(self) -> str:
        return access_why(self.purpose)


def access_history_grouped(
    *, customer: Customer, limit: int = 100
) -> list[AccessVisit]:
    """Who looked at the customer's data, newest first, one row per visit: reads by
    the same staff member for the same purpose, each within VISIT_GAP of the next,
    with their count and time range; said by role (two agents are two rows, neither
    named). At most `limit` visits (the rows stream)."""
    visits: list[AccessVisit] = []
    for at, staff_id, role, purpose in access_log_reads_for_subject(customer=customer):
        last = visits[-1] if visits else None
        if (
            last is not None
            and last.staff_id == staff_id
            and last.role == role
            and last.purpose == purpose
            and last.first - at <= VISIT_GAP
        ):
            last.first = at
            last.count += 1
            continue
        if len(visits) == limit:
            break
        visits.append(
            AccessVisit(role, purpose, first=at, last=at, count=1, staff_id=staff_id)
        )
    return visits
