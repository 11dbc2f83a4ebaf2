"""What a customer's export holds: their own data and nothing of anyone else's."""

from collections.abc import Iterator
from typing import Any

from django.utils import timezone

from apps.access.models import AccessPurpose
from apps.access.selectors import (
    access_log_list_for_subject,
    interaction_list_for_customer,
)
from apps.accounts.models import Role
from apps.consent.selectors import (
    consent_overview_for_customer,
    consent_receipts_for_customer,
)
from apps.customers.masking import show_full
from apps.customers.models import Customer
from apps.customers.registry import PII_FIELDS
from apps.incidents.selectors import notices_for_customer
from apps.inventory.selectors import recipient_list, system_list


def access_history(*, customer: Customer) -> Iterator[dict[str, Any]]:
    """Who looked at the customer's data, as the customer sees it: date, role and
    purpose, never the employee's name. A generator: it streams 10,000s of rows."""
    labels = dict(Role.choices)
    purposes = dict(AccessPurpose.choices)
    for at, role, purpose, fields in access_log_list_for_subject(customer=customer):
        yield {
            "at": at.isoformat(),
            "who": f"a {labels.get(role, 'staff member').lower()}",
            "why": purposes.get(purpose, purpose),
            "fields": fields,
        }


def export_contents(*, customer: Customer) -> dict[str, Any]:
    held_categories = set()
    fields = {}
    for spec in PII_FIELDS:
        value = getattr(customer, spec.name)
        if value is not None:
            fields[spec.label] = show_full(value)
            held_categories.add(spec.category)
    return {
        "generated_at": timezone.now().isoformat(),
        "customer": {
            "id": str(customer.pk),
            "status": customer.status,
            "country": customer.country,
            "region": customer.region,
            "created_at": customer.created_at.isoformat(),
            "fields": fields,
        },
        "consents": [
            {
                "purpose": view.purpose.name,
                "granted": view.granted,
                "since": view.state.updated_at.isoformat() if view.state else None,
                "notice_version": view.state.notice_version if view.state else None,
            }
            for view in consent_overview_for_customer(customer=customer)
        ],
        "consent_receipts": consent_receipts_for_customer(customer=customer)[
            "receipts"
        ],
        "who_looked_at_my_data": list(access_history(customer=customer)),
        "interactions": [
            {
                "kind": i.get_kind_display(),
                "opened_at": i.opened_at.isoformat(),
                "closed_at": i.closed_at.isoformat() if i.closed_at else None,
            }
            for i in interaction_list_for_customer(customer=customer)
        ],
        "notices_received": [
            {
                "subject": n.subject,
                # Sent ones only (the selector): never None.
                "sent_at": n.sent_at.isoformat() if n.sent_at else None,
                "text": n.body,
            }
            for n in notices_for_customer(customer_id=customer.pk)
        ],
        "where_your_data_is_kept": [
            {"name": s.name, "country": s.country, "retention": s.retention}
            for s in system_list()
            if held_categories & set(s.data_categories)
        ],
        "who_receives_it": [
            {
                "name": r.name,
                "purpose": r.purpose,
                "country": r.country,
                "only_with_your_consent_to": r.gating_purpose.name
                if r.gating_purpose
                else None,
            }
            for r in recipient_list()
            if held_categories & set(r.data_categories)
        ],
    }
