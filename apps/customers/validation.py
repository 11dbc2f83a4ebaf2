"""Domain checks on customer input. Messages never echo the value they refuse."""

import re
from datetime import date

import pycountry

from apps.crypto.blind import normalize_email, normalize_phone
from apps.customers.errors import CustomerError

CARD_MESSAGE = (
    "Card numbers must not be stored here: keep only the payment processor's token "
    "and the last 4 digits."
)
# Runs of digits joined by single spaces or dashes, as card numbers are written.
_DIGIT_RUN = re.compile(r"\d+(?:[ -]\d+)*")
_SEPARATOR = re.compile(r"[ -]")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A phone number as people type one: "+62 812-3456-7890", "0812 3456 7890".
_PHONE = re.compile(r"(?:\+|\b0)\d[\d ()-]{7,}\d")
PERSONAL_DATA_MESSAGE = (
    "The reason must not contain personal data (an email address, a phone or card "
    "number)."
)


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def contains_personal_data(text: str) -> bool:
    """True if free text a staff member typed (a reason, a note for the audit trail)
    holds an email address, a phone number or a card number. Such text is kept, and
    the audit trail cannot be erased."""
    return "@" in text or bool(_PHONE.search(text)) or contains_card_number(text)


def contains_card_number(text: str) -> bool:
    """True if `text` holds 13-19 digits (spaces or dashes allowed) passing Luhn.

    A candidate is any run of whole digit groups: "4111 1111 1111 1111 12" holds a card,
    while a 20-digit reference written without separators is not cut into windows.
    """
    for run in _DIGIT_RUN.findall(text):
        groups = _SEPARATOR.split(run)
        for start in range(len(groups)):
            digits = ""
            for group in groups[start:]:
                digits += group
                if len(digits) > 19:
                    break
                if len(digits) >= 13 and luhn_valid(digits):
                    return True
    return False


def refuse_card_numbers(values: dict[str, object]) -> None:
    for name, value in values.items():
        if isinstance(value, str) and contains_card_number(value):
            raise CustomerError(CARD_MESSAGE, field=name, code="card_number")


def clean_country(value: str) -> str:
    code = (value or "").strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise CustomerError(
            "Enter an ISO 3166-1 alpha-2 country code, such as ID or DE.",
            field="country",
        )
    return code


def clean_region(value: str, *, country: str) -> str:
    code = (value or "").strip().upper()
    if not code:
        return ""
    subdivision = pycountry.subdivisions.get(code=code)
    if subdivision is None or subdivision.country_code != country:
        raise CustomerError(
            "Enter an ISO 3166-2 region code of the customer's country, such as ID-JK.",
            field="region",
        )
    return code


def clean_email(value: str) -> str:
    email = normalize_email(value or "")
    if not _EMAIL.match(email) or len(email) > 254:
        raise CustomerError("Enter a valid email address.", field="email")
    return email


def clean_phone(value: str, *, country: str) -> str:
    try:
        return normalize_phone(value or "", region=country)
    except ValueError:
        raise CustomerError(
            "Enter a valid phone number, with its country code if it is abroad.",
            field="phone",
        ) from None


def clean_date_of_birth(value: date) -> date:
    if value > date.today():  # noqa: DTZ011 - a calendar date, not an instant
        raise CustomerError(
            "The date of birth is in the future.", field="date_of_birth"
        )
    if value.year < 1900:
        raise CustomerError("The date of birth is before 1900.", field="date_of_birth")
    return value


def clean_card_last4(value: str) -> str:
    if not re.fullmatch(r"\d{4}", value or ""):
        raise CustomerError(
            "Give exactly the last 4 digits of the card.", field="card_last4"
        )
    return value
