"""Versions of single objects: an `ETag` on each read, `If-Match` on each change.

An app says what a version of its object is (`etag_of` over the row's state, e.g.
`customers.selectors.customer_etag`); its service compares the client's `If-Match`
under the row lock it takes anyway (`etag_check`), before changing anything, so of
two changes sent with one tag, one is refused.
"""

import hashlib
from datetime import UTC, datetime
from typing import Any

from apps.core.errors import PreconditionFailed

_SEPARATOR = b"\x1f"


def etag_of(*parts: Any) -> str:
    """A quoted strong ETag: sha256 over `parts` (32 hex characters). Each part is
    written unambiguously (None, bytes, datetimes in UTC, anything else as text)."""
    digest = hashlib.sha256()
    for part in parts:
        encoded = _encode(part)
        digest.update(len(encoded).to_bytes(8, "big"))
        digest.update(encoded)
    return f'"{digest.hexdigest()[:32]}"'


def etag_check(*, if_match: str, current: str) -> None:
    """Pass when `if_match` is `*` or a list naming `current` (strong comparison:
    weak `W/` tags never match). Raises PreconditionFailed."""
    tags = [tag.strip() for tag in if_match.split(",")]
    if "*" in tags or current in tags:
        return
    raise PreconditionFailed(
        "This object changed since you read it; read it again and apply your "
        "change to the new version.",
        code="stale",
    )


def _encode(part: Any) -> bytes:
    if part is None:
        return b"\x00"
    if isinstance(part, bytes | bytearray | memoryview):
        return b"b" + bytes(part)
    if isinstance(part, datetime):
        if part.tzinfo is not None:
            part = part.astimezone(UTC)
        return b"t" + part.isoformat().encode()
    return b"s" + str(part).encode()
