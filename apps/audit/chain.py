"""The hash chain: canonical content of an event and its hash. Pure functions."""

import hashlib
import json
from datetime import datetime
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_content(
    *,
    seq: int,
    created_at: datetime,
    actor_id: int | None,
    actor_role: str,
    action: str,
    target_type: str,
    target_id: str,
    details: dict[str, Any],
) -> str:
    return json.dumps(
        {
            "seq": seq,
            "created_at": created_at.isoformat(timespec="microseconds"),
            "actor_id": actor_id,
            "actor_role": actor_role,
            "action": action,
            "target_type": target_type,
            "target_id": target_id,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )


def link_hash(prev_hash: str, content: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{content}".encode()).hexdigest()


def event_hash(event: Any) -> str:
    """The hash an AuditEvent row should carry, computed from its stored columns."""
    content = canonical_content(
        seq=event.seq,
        created_at=event.created_at,
        actor_id=event.actor_id,
        actor_role=event.actor_role,
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        details=event.details,
    )
    return link_hash(event.prev_hash, content)
