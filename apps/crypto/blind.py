"""Blind indexes: keyed HMAC-SHA256 of a normalised value, for exact-match search.

The key is AMANAH_BLIND_INDEX_KEY, separate from the master keys. Hashing happens
here, in Python, so neither key nor plaintext ever reaches SQL (or PostgreSQL's logs).
"""

import hashlib
import hmac

import phonenumbers
from django.conf import settings

from apps.crypto.keyring import blind_index_key


def normalize_email(value: str) -> str:
    return value.strip().lower()


def normalize_phone(value: str, region: str | None = None) -> str:
    """E.164 (`+628123456789`). Raises ValueError for a number that is not valid."""
    try:
        number = phonenumbers.parse(
            value, region or getattr(settings, "AMANAH_DEFAULT_PHONE_REGION", None)
        )
    except phonenumbers.NumberParseException as exc:
        raise ValueError("not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def blind_index(scope: str, normalized: str) -> str:
    """Hex HMAC of `normalized`, per `scope`, so two indexes never correlate."""
    message = f"{scope}\x00{normalized}".encode()
    return hmac.new(blind_index_key(), message, hashlib.sha256).hexdigest()
