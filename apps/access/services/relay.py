"""The masked contact relay: the telephony provider asks where a call or message
to an interaction's alias goes, in signed, single-use requests."""

import hashlib
import hmac
import logging
import secrets
import time

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from apps.access.errors import AccessForbidden, RelayGone, RelayUnauthorized
from apps.access.models import RelayEvent, RelayOutcome
from apps.access.selectors import interaction_by_alias
from apps.crypto.blind import normalize_phone

logger = logging.getLogger(__name__)


def relay_signature(*, timestamp: str, body: bytes) -> str:
    """What the provider must send in X-Amanah-Signature (hex HMAC-SHA256)."""
    key = settings.AMANAH_RELAY_SECRET.encode()
    return hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def relay_verify(*, timestamp: str, signature: str, body: bytes) -> None:
    """Refuse unsigned, wrongly signed, stale, future-dated or replayed calls: each
    signed request is used once. Raises RelayUnauthorized."""
    if not timestamp or not signature:
        raise RelayUnauthorized("Signed requests only.")
    try:
        sent = int(timestamp)
    except ValueError:
        raise RelayUnauthorized("Bad timestamp.") from None
    max_age = settings.AMANAH_RELAY_MAX_SKEW_SECONDS
    future_skew = settings.AMANAH_RELAY_FUTURE_SKEW_SECONDS
    now = time.time()
    if now - sent > max_age:
        raise RelayUnauthorized("Stale request.")
    if sent - now > future_skew:
        raise RelayUnauthorized("Timestamp in the future.")
    expected = relay_signature(timestamp=timestamp, body=body)
    if not hmac.compare_digest(expected, signature.removeprefix("sha256=")):
        raise RelayUnauthorized("Bad signature.")
    # Only a request that checks out is remembered, so a forgery sent with a real
    # timestamp cannot burn it. The shared cache: every web process must see it; it
    # outlives the request's window (at most max_age + future_skew from now).
    # The value is this call's own: if the cache client retried an `add` that had
    # landed (a Redis restart), the key holds this call's value, not a replay's.
    key, mine = f"relay:seen:{expected}", secrets.token_hex(8)
    if (
        not cache.add(key, mine, timeout=max_age + future_skew)
        and cache.get(key) != mine
    ):
        logger.warning("contact.relay_replayed", extra={"timestamp": sent})
        raise RelayUnauthorized("This request was already used.", code="relay_replayed")


def _same_phone(a: str, b: str) -> bool:
    try:
        return bool(a and b) and normalize_phone(a) == normalize_phone(b)
    except ValueError:
        return False


def relay_route(*, alias: str, caller: str) -> dict[str, str]:
    """Where a call or message to `alias` from `caller` goes, while the session is open.

    Raises NotFound (unknown alias), RelayGone (closed or expired, 410), AccessForbidden
    (caller is neither the staff member nor the customer).
    """
    interaction = interaction_by_alias(alias=alias)
    now = timezone.now()
    customer, staff = interaction.customer, interaction.staff
    if not interaction.is_open_at(now):
        RelayEvent.objects.create(
            interaction=interaction, outcome=RelayOutcome.GONE, created_at=now
        )
        raise RelayGone("This contact session has ended.")
    if _same_phone(caller, staff.work_phone):
        party, destination = "staff", customer.phone
    elif not customer.is_erased and _same_phone(caller, customer.phone or ""):
        party, destination = "customer", staff.work_phone
    else:
        RelayEvent.objects.create(
            interaction=interaction, outcome=RelayOutcome.REFUSED, created_at=now
        )
        raise AccessForbidden("The caller is not a party to this session.")
    if not destination:
        raise RelayGone("The other party has no number to connect to.")
    RelayEvent.objects.create(
        interaction=interaction,
        caller_party=party,
        outcome=RelayOutcome.CONNECTED,
        created_at=now,
    )
    logger.info(
        "contact.relayed", extra={"interaction": str(interaction.pk), "party": party}
    )
    return {"destination": destination, "caller_party": party}
