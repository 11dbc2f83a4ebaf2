"""What each kind of record is, for disposal: its rows, the time its clock starts from,
where its customer is, and how a batch of it is disposed of.

Every query here is SQL built by the ORM: nothing loops over rows in Python to decide
what is due.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet

from apps.access.selectors import (
    access_log_list,
    access_log_written_filter,
    interaction_closed_filter,
    interaction_list_closed,
)
from apps.access.services import access_log_delete_bulk, interactions_delete_bulk
from apps.consent.selectors import (
    consent_event_queryset,
    consent_event_withdrawn_filter,
)
from apps.consent.services import consent_events_delete_bulk
from apps.customers.registry import fields_in_category
from apps.customers.selectors import (
    CLOCK_FIELDS,
    customer_clock_filter,
    customers_closed,
    customers_holding_category,
    customers_not_erased,
)
from apps.customers.services import (
    customers_clear_fields_bulk,
    customers_delete_bulk,
    customers_shred_bulk,
)
from apps.retention.models import Action, Covers, RetentionPolicy


@dataclass(frozen=True)
class Scope:
    rows: Callable[[RetentionPolicy], QuerySet]
    customer_field: str  # path from a row to its customer's id, for legal holds
    # The condition "the policy's clock started at or before this time", from the app
    # that owns the rows.
    started: Callable[[RetentionPolicy, datetime], Q]
    # The rows' column the clock reads (None: the clock is not a column of theirs),
    # for the sweep's order (`sweep_order`).
    clock_field: Callable[[RetentionPolicy], str | None] = lambda policy: None

    def sweep_order(self, policy: RetentionPolicy) -> list[str]:
        """The order a sweep takes due rows in (`walk.BatchCursor.sweep`): by the
        clock, then the key. A sweep looks at the whole table with no key range, and
        in key order a plan finds what is due by reading the rows one by one, up to
        all of them when none is left (50 s at 2,000,000 customers, in one
        transaction); in the clock's order an index on the clock reads the due rows
        only, and stops at the first that is not."""
        field = self.clock_field(policy)
        return [field, "pk"] if field else ["pk"]

    def clock(self, policy: RetentionPolicy, *, before: datetime) -> Q:
        """Rows whose retention clock started at or before `before`."""
        return self.started(policy, before)

    def due(self, policy: RetentionPolicy, *, at: datetime) -> QuerySet:
        period = timedelta(days=policy.period_days)
        return self.rows(policy).filter(self.clock(policy, before=at - period))


def _customers_not_erased(policy: RetentionPolicy) -> QuerySet:
    return customers_not_erased()


def _closed_accounts(policy: RetentionPolicy) -> QuerySet:
    return customers_closed()


def _pii_of_category(policy: RetentionPolicy) -> QuerySet:
    return customers_holding_category(category=policy.category)


def _customer_clock(policy: RetentionPolicy, before: datetime) -> Q:
    return customer_clock_filter(clock=policy.trigger, before=before)


def _customer_clock_field(policy: RetentionPolicy) -> str:
    return CLOCK_FIELDS[policy.trigger]


def _consent_withdrawn(policy: RetentionPolicy, before: datetime) -> Q:
    return consent_event_withdrawn_filter(before=before)


# The access log's and the interactions' clocks: each kind has one trigger (ALLOWED).
def _access_log_written(policy: RetentionPolicy, before: datetime) -> Q:
    return access_log_written_filter(before=before)


def _interaction_closed(policy: RetentionPolicy, before: datetime) -> Q:
    return interaction_closed_filter(before=before)


SCOPES: dict[str, Scope] = {
    Covers.CLOSED_ACCOUNTS: Scope(
        _closed_accounts, "pk", _customer_clock, _customer_clock_field
    ),
    Covers.INACTIVE_CUSTOMERS: Scope(
        _customers_not_erased, "pk", _customer_clock, _customer_clock_field
    ),
    Covers.CUSTOMER_PII: Scope(
        _pii_of_category, "pk", _customer_clock, _customer_clock_field
    ),
    Covers.ACCESS_LOG: Scope(
        lambda p: access_log_list(),
        "customer_id",
        _access_log_written,
        lambda p: "created_at",
    ),
    # The clock of an event is its consent's withdrawal, not a column of its own.
    Covers.CONSENT_EVENTS: Scope(
        lambda p: consent_event_queryset(), "customer_id", _consent_withdrawn
    ),
    Covers.INTERACTIONS: Scope(
        lambda p: interaction_list_closed(),
        "customer_id",
        _interaction_closed,
        lambda p: "closed_at",
    ),
}


def dispose(policy: RetentionPolicy, pks: list[Any]) -> int:
    """Apply the policy's action to a batch of its rows. Returns rows affected."""
    if policy.covers in (Covers.CLOSED_ACCOUNTS, Covers.INACTIVE_CUSTOMERS):
        if policy.action == Action.DELETE:
            return customers_delete_bulk(customer_ids=pks)
        return customers_shred_bulk(
            customer_ids=pks, anonymize=policy.action == Action.ANONYMIZE
        )
    if policy.covers == Covers.CUSTOMER_PII:
        return customers_clear_fields_bulk(
            customer_ids=pks, fields=list(fields_in_category(policy.category))
        )
    if policy.covers == Covers.ACCESS_LOG:
        return access_log_delete_bulk(entry_ids=pks)
    if policy.covers == Covers.CONSENT_EVENTS:
        return consent_events_delete_bulk(event_ids=pks)
    return interactions_delete_bulk(interaction_ids=pks)
