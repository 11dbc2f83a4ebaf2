"""What each kind of record is, for disposal: its rows, the time its clock starts from,
where its customer is, and how a batch of it is disposed of.

Every query here is SQL built by the ORM: nothing loops over rows in Python to decide
what is due.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from apps.access.models import AccessLogEntry, Interaction
from apps.access.services import access_log_delete_bulk, interactions_delete_bulk
from apps.consent.models import ConsentEvent, ConsentState
from apps.consent.services import consent_events_delete_bulk
from apps.customers.models import Customer, CustomerStatus
from apps.customers.registry import fields_in_category
from apps.customers.services import (
    customers_clear_fields_bulk,
    customers_delete_bulk,
    customers_shred_bulk,
)
from apps.retention.models import Action, Covers, RetentionPolicy, Trigger

TIME_FIELDS = {
    Trigger.CREATED: "created_at",
    Trigger.LAST_ACTIVITY: "last_activity_at",
    Trigger.CLOSED: "closed_at",
    Trigger.INTERACTION_CLOSED: "closed_at",
}


@dataclass(frozen=True)
class Scope:
    rows: Callable[[RetentionPolicy], QuerySet]
    customer_field: str  # path from a row to its customer's id, for legal holds

    def clock(self, policy: RetentionPolicy, *, before: datetime) -> Q:
        """Rows whose retention clock started at or before `before`."""
        if policy.trigger == Trigger.CONSENT_WITHDRAWN:
            withdrawn = ConsentState.objects.filter(
                customer=OuterRef("customer"),
                purpose=OuterRef("purpose"),
                granted=False,
                updated_at__lte=before,
            )
            return Q(Exists(withdrawn))
        return Q(**{f"{TIME_FIELDS[policy.trigger]}__lte": before})

    def due(self, policy: RetentionPolicy, *, at: datetime) -> QuerySet:
        period = timedelta(days=policy.period_days)
        return self.rows(policy).filter(self.clock(policy, before=at - period))


def _customers_not_erased(policy: RetentionPolicy) -> QuerySet:
    return Customer.objects.filter(erased_at__isnull=True)


def _closed_accounts(policy: RetentionPolicy) -> QuerySet:
    return Customer.objects.filter(
        erased_at__isnull=True, status=CustomerStatus.CLOSED, closed_at__isnull=False
    )


def _pii_of_category(policy: RetentionPolicy) -> QuerySet:
    holding = Q()
    for name in fields_in_category(policy.category):
        holding |= Q(**{f"{name}__isnull": False})
    return Customer.objects.filter(erased_at__isnull=True).filter(holding)


SCOPES: dict[str, Scope] = {
    Covers.CLOSED_ACCOUNTS: Scope(_closed_accounts, "pk"),
    Covers.INACTIVE_CUSTOMERS: Scope(_customers_not_erased, "pk"),
    Covers.CUSTOMER_PII: Scope(_pii_of_category, "pk"),
    Covers.ACCESS_LOG: Scope(lambda p: AccessLogEntry.objects.all(), "customer_id"),
    Covers.CONSENT_EVENTS: Scope(lambda p: ConsentEvent.objects.all(), "customer_id"),
    Covers.INTERACTIONS: Scope(
        lambda p: Interaction.objects.filter(closed_at__isnull=False), "customer_id"
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
