"""One masking function per kind of value. Used by the API, the pages and the admin.

Each returns a string safe to show to someone without the right to the full value, or
None when the kind is hidden entirely. An erased value reads as "[erased]".
"""

import re
from collections.abc import Callable
from datetime import date
from typing import Any

from apps.crypto.fields import ERASED
from apps.customers.registry import PII_BY_NAME, ValueKind

DOT = "•••"


def mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[:1]}{DOT}@{domain}" if domain else DOT


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return f"•••• {digits[-4:]}" if len(digits) >= 4 else DOT


def mask_name(value: str) -> str:
    return " ".join(f"{part[:1]}{DOT}" for part in value.split()) or DOT


def mask_hidden(value: Any) -> str:
    return DOT


def mask_city(value: str) -> str:
    # Address masking keeps the city only: enough to route, not to find the door.
    return value


def mask_date_of_birth(value: date) -> str:
    return str(value.year)


def mask_national_id(value: str) -> str:
    return f"{DOT}{value[-2:]}" if len(value) > 2 else DOT


def mask_free_text(value: str) -> None:
    return None


def mask_card_last4(value: str) -> str:
    # Input is validated to 4 digits; the mask keeps its rule even if a longer one
    # reaches it (an import, an old row).
    return f"•••• {value[-4:]}"


MASKERS: dict[str, Callable[[Any], str | None]] = {
    ValueKind.NAME: mask_name,
    ValueKind.EMAIL: mask_email,
    ValueKind.PHONE: mask_phone,
    ValueKind.ADDRESS_LINE: mask_hidden,
    ValueKind.CITY: mask_city,
    ValueKind.POSTAL_CODE: mask_hidden,
    ValueKind.DATE_OF_BIRTH: mask_date_of_birth,
    ValueKind.NATIONAL_ID: mask_national_id,
    ValueKind.FREE_TEXT: mask_free_text,
    ValueKind.TOKEN: mask_hidden,
    ValueKind.CARD_LAST4: mask_card_last4,
}


def mask_value(kind: str, value: Any) -> str | None:
    if value is ERASED:
        return str(ERASED)
    if value is None or value == "":
        return None
    return MASKERS[kind](value)


def mask_field(name: str, value: Any) -> str | None:
    return mask_value(PII_BY_NAME[name].kind, value)


def show_full(value: Any) -> Any:
    """A full value for output: dates as ISO text, erased as "[erased]"."""
    if value is ERASED:
        return str(ERASED)
    if isinstance(value, date):
        return value.isoformat()
    return value
