"""Every PII field of a customer, tagged with its data category and kind of value.

One registry that masking, access policy and retention read: add a field here and it is
masked, policed and disposed of with the rest.
"""

from dataclasses import dataclass

from django.db import models
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


class DataCategory(models.TextChoices):
    # Labels are translated: customers read them in breach notices.
    IDENTITY = "identity", _("Identity")
    CONTACT = "contact", _("Contact details")
    ADDRESS = "address", _("Address")
    FINANCIAL = "financial", _("Financial")
    SENSITIVE = "sensitive", _("Sensitive")
    FREE_TEXT = "free_text", _("Free text")


class ValueKind(models.TextChoices):
    NAME = "name"
    EMAIL = "email"
    PHONE = "phone"
    ADDRESS_LINE = "address_line"
    CITY = "city"
    POSTAL_CODE = "postal_code"
    DATE_OF_BIRTH = "date_of_birth"
    NATIONAL_ID = "national_id"
    FREE_TEXT = "free_text"
    TOKEN = "token"  # noqa: S105 - a kind of value, not a secret  # nosec B105
    CARD_LAST4 = "card_last4"


@dataclass(frozen=True)
class PiiField:
    name: str
    category: DataCategory
    kind: ValueKind
    # Translated (lazily): customers read it in their export and on My data. Joined
    # or stored, it goes through str() in the language wanted.
    label: Promise


PII_FIELDS: tuple[PiiField, ...] = (
    PiiField("full_name", DataCategory.IDENTITY, ValueKind.NAME, _("Full name")),
    PiiField("email", DataCategory.CONTACT, ValueKind.EMAIL, _("Email")),
    PiiField("phone", DataCategory.CONTACT, ValueKind.PHONE, _("Phone")),
    PiiField(
        "address_line", DataCategory.ADDRESS, ValueKind.ADDRESS_LINE, _("Address")
    ),
    PiiField("city", DataCategory.ADDRESS, ValueKind.CITY, _("City")),
    PiiField(
        "postal_code", DataCategory.ADDRESS, ValueKind.POSTAL_CODE, _("Postal code")
    ),
    PiiField(
        "date_of_birth",
        DataCategory.SENSITIVE,
        ValueKind.DATE_OF_BIRTH,
        _("Date of birth"),
    ),
    PiiField(
        "national_id", DataCategory.SENSITIVE, ValueKind.NATIONAL_ID, _("National id")
    ),
    PiiField("notes", DataCategory.FREE_TEXT, ValueKind.FREE_TEXT, _("Notes")),
    PiiField(
        "payment_token", DataCategory.FINANCIAL, ValueKind.TOKEN, _("Payment token")
    ),
    PiiField(
        "card_last4", DataCategory.FINANCIAL, ValueKind.CARD_LAST4, _("Card (last 4)")
    ),
)
PII_FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in PII_FIELDS)
PII_BY_NAME: dict[str, PiiField] = {f.name: f for f in PII_FIELDS}
TEXT_FIELD_NAMES: tuple[str, ...] = tuple(
    f.name for f in PII_FIELDS if f.kind != ValueKind.DATE_OF_BIRTH
)


def fields_in_category(category: str) -> tuple[str, ...]:
    return tuple(f.name for f in PII_FIELDS if f.category == category)
