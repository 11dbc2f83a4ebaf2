"""The access log: one row each time a customer's data is shown to a staff member,
naming the fields shown and how (full or masked), the purpose, and the interaction
and reveal it was shown under. `access_log_write` is its one writer."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from django.utils import timezone

from apps.access.models import AccessLogEntry, AccessPurpose, Visibility
from apps.accounts.models import GOVERNANCE_ROLES, User
from apps.core.db import bulk_insert


class AccessLogRow(NamedTuple):
    """What one access-log row says besides who, when and in which role."""

    customer_id: Any
    fields: dict[str, str]  # field name: how it was shown (full or masked)
    purpose: str
    interaction_id: Any = None
    reveal_id: int | None = None


# AccessLogRow's items, in its order, as the model's attributes.
_COLUMNS = ("customer_id", "fields", "purpose", "interaction_id", "reveal_id")


def access_log_purpose(*, actor: User, kind: str | None) -> str:
    """What a read is logged as: the kind of the interaction it was made under (`kind`),
    else governance for governance roles and a search for the others."""
    if kind is not None:
        return kind
    if actor.role in GOVERNANCE_ROLES:
        return AccessPurpose.GOVERNANCE
    return AccessPurpose.SEARCH


def access_log_write(
    *, actor: User, entries: Sequence[AccessLogRow], at: datetime | None = None
) -> None:
    """One access-log row per entry, by `actor` in their current role, at `at` (now),
    in one statement (`bulk_insert`): on PostgreSQL the rows travel as arrays, one
    round trip (no transaction around it) whatever the page size."""
    bulk_insert(
        AccessLogEntry,
        rows=entries,
        columns=_COLUMNS,
        constants={
            "staff_id": actor.pk,
            "staff_role": actor.role,
            "created_at": at or timezone.now(),
        },
    )


def access_log_write_masked(
    *, actor: User, shown: dict[Any, list[str]], purpose: str | None = None
) -> None:
    """Log the masked values a page outside the staff pages and the API showed (the
    Django admin): one row per customer, naming the fields shown masked, for the
    purpose a search of the actor's would have (governance roles: governance), or
    `purpose`. Through `access_log_write`, in one insert."""
    why = purpose or access_log_purpose(actor=actor, kind=None)
    access_log_write(
        actor=actor,
        entries=[
            AccessLogRow(customer_id, dict.fromkeys(fields, Visibility.MASKED), why)
            for customer_id, fields in shown.items()
            if fields
        ],
    )


def access_log_write_full(
    *,
    actor: User,
    customer_id: Any,
    fields: list[str],
    purpose: str = AccessPurpose.GOVERNANCE,
) -> None:
    """Log values of one customer's shown in full outside the staff pages and the API
    (the details a customer wrote on a data request, opened by the staff member
    handling it): one row naming them, for `purpose`."""
    access_log_write(
        actor=actor,
        entries=[
            AccessLogRow(customer_id, dict.fromkeys(fields, Visibility.FULL), purpose)
        ],
    )
