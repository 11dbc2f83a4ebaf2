"""What a customer's export holds: their own data and nothing of anyone else's.

Built under the customer's language (`translation.override`, by the caller): labels,
purposes and the readable page in it; the JSON keeps ISO dates for other services."""

from collections.abc import Iterator
from typing import Any

from django.template.loader import render_to_string
from django.utils import formats, timezone, translation
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from apps.access.selectors import (
    access_log_list_for_subject,
    interaction_list_for_customer,
)
from apps.access.wording import access_who, access_why
from apps.consent.selectors import (
    consent_overview_for_customer,
    consent_receipts_for_customer,
    purpose_text,
)
from apps.customers.masking import show_full
from apps.customers.models import Customer
from apps.customers.registry import PII_FIELDS
from apps.incidents.selectors import notices_for_customer
from apps.inventory.selectors import recipient_list, system_list

KINDS = {"support_case": _("Support case"), "delivery": _("Delivery")}


def access_history(*, customer: Customer) -> Iterator[dict[str, Any]]:
    """Who looked at the customer's data, as the customer sees it: date, role and
    purpose, never the employee's name. A generator: it streams 10,000s of rows."""
    for at, role, purpose, fields in access_log_list_for_subject(customer=customer):
        yield {
            "at": at.isoformat(),
            "who": access_who(role),
            "why": access_why(purpose),
            "fields": fields,
        }


def export_contents(
    *, customer: Customer, language: str | None = None
) -> dict[str, Any]:
    """The customer's data, JSON-ready: labels and purposes in `language` (default:
    the active one)."""
    language = language or translation.get_language()
    held_categories = set()
    fields = {}
    for spec in PII_FIELDS:
        value = getattr(customer, spec.name)
        if value is not None:
            fields[str(spec.label)] = show_full(value)
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
                "purpose": purpose_text(view.purpose, language).name,
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
                "kind": str(KINDS.get(i.kind, i.kind)),
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
                "only_with_your_consent_to": purpose_text(
                    r.gating_purpose, language
                ).name
                if r.gating_purpose
                else None,
            }
            for r in recipient_list()
            if held_categories & set(r.data_categories)
        ],
    }


def _when(value: str | None) -> str:
    """An ISO time of the contents as the active language writes it (local time)."""
    moment = parse_datetime(value) if value else None
    if moment is None:
        return ""
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def export_page(*, contents: dict[str, Any], language: str) -> str:
    """The readable page of the export (my-data.html), in the active language."""
    shown = {
        **contents,
        "generated_at": _when(contents["generated_at"]),
        "who_looked_at_my_data": [
            {**look, "at": _when(look["at"])}
            for look in contents["who_looked_at_my_data"]
        ],
        "interactions": [
            {**i, "opened_at": _when(i["opened_at"])} for i in contents["interactions"]
        ],
        "notices_received": [
            {**n, "sent_at": _when(n["sent_at"])} for n in contents["notices_received"]
        ],
    }
    return render_to_string(
        "requests/export.html",
        {
            "data": shown,
            "language": language,
            "direction": "rtl" if translation.get_language_bidi() else "ltr",
        },
    )
