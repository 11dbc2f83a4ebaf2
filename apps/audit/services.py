"""Writes to the audit trail. `record` is the only way in.

Lock order (apps/core/db.py): the audit chain is the last lock a transaction takes, and
it is held until commit. `record` first takes the actor's `KEY SHARE` lock, the one
its insert's foreign-key check needs, so it never waits on a row while holding the
chain. The insert's trigger then moves the chain-head row (`AuditChainHead`) forward:
only holders of the chain lock touch that row, so it is never waited on either.
"""

import json
import logging
import os
import re
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.utils import timezone
from psycopg import sql

from apps.accounts.models import User
from apps.audit.chain import GENESIS_HASH, canonical_content, link_hash
from apps.audit.errors import AuditError
from apps.audit.models import AuditCheckpoint, AuditEvent, ChainVerification
from apps.audit.selectors import ChainReport, audit_checkpoint_get
from apps.audit.signatures import checkpoint_sign
from apps.core import siem
from apps.core.db import advisory_xact_lock

logger = logging.getLogger(__name__)

# Any constant that no other advisory lock in the database uses ("amanah" in ASCII).
AUDIT_CHAIN_LOCK = 0x616D616E6168

# Defence in depth: detail keys that name PII, and values that look like an email
# address, are refused. Callers put ids, codes and counts in details, never the data.
_PII_KEYS = frozenset(
    {
        "email",
        "phone",
        "full_name",
        "name",
        "address",
        "address_line",
        "city",
        "postal_code",
        "date_of_birth",
        "national_id",
        "notes",
        "password",
        "token",
    }
)
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _check_details(value: Any, path: str = "details") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                # 1 and "1" would be one key in JSON: the stored row would not hash
                # to what was recorded.
                raise AuditError("Audit detail keys must be text.", field=path)
            if key.lower() in _PII_KEYS:
                raise AuditError(f"Audit details may not carry '{key}'.", field=path)
            _check_text(key, path)
            _check_details(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for item in value:
            _check_details(item, path)
    elif isinstance(value, str):
        if _EMAIL_RE.search(value):
            raise AuditError(
                "Audit details may not carry an email address.", field=path
            )
        _check_text(value, path)
    elif isinstance(value, float):
        # PostgreSQL's jsonb rewrites some floats (1e16 reads back as an integer,
        # -0.0 as 0.0), so the stored row would no longer match its hash.
        raise AuditError("Audit details hold whole numbers, not floats.", field=path)
    elif value is not None and not isinstance(value, int | bool):
        raise AuditError("Audit details must be plain JSON values.", field=path)


def _check_text(value: str, path: str) -> None:
    if "\x00" in value:  # jsonb cannot hold U+0000
        raise AuditError("Audit details may not carry a NUL character.", field=path)


def _lock_chain_head(actor_id: Any) -> None:
    """Serialise appends until the caller's transaction ends: the chain never forks.
    The actor's row is key-share locked first, by its table's name from the foreign
    key's metadata (accounts and audit share a layer: docs/ARCHITECTURE.md)."""
    if actor_id is not None and connection.vendor == "postgresql":
        users = AuditEvent._meta.get_field("actor").related_model._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                sql.SQL("SELECT 1 FROM {} WHERE id = %s FOR KEY SHARE").format(
                    sql.Identifier(users)
                ),
                [actor_id],
            )
    advisory_xact_lock(AUDIT_CHAIN_LOCK)


@transaction.atomic
def record(
    *,
    actor: User | None,
    action: str,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append an event to the trail in the caller's transaction. Raises AuditError."""
    details = dict(details or {})
    _check_details(details)
    if target is not None:
        target_type = target._meta.label_lower
        target_id = str(target.pk)
    actor_id = getattr(actor, "pk", None)
    actor_role = getattr(actor, "role", "") if actor is not None else "system"

    _lock_chain_head(actor_id)
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, prev_hash = (head[0] + 1, head[1]) if head else (1, GENESIS_HASH)
    row: dict[str, Any] = {
        "seq": seq,
        "created_at": timezone.now(),
        "actor_id": actor_id,
        "actor_role": actor_role,
        "action": action,
        "target_type": target_type,
        "target_id": target_id,
        "details": details,
    }
    event = AuditEvent.objects.create(
        **row,
        prev_hash=prev_hash,
        hash=link_hash(prev_hash, canonical_content(**row)),
    )
    if siem.enabled():
        # After commit, robust: a SIEM that is down never fails or undoes the change.
        transaction.on_commit(
            partial(siem.audit_event_emit, **row, hash=event.hash), robust=True
        )
    logger.debug("audit.recorded", extra={"action": action, "seq": seq})
    return event


def _write_atomically(path: Path, body: bytes) -> None:
    """Write `path` whole or not at all: a temporary file beside it, fsynced, renamed
    over it, and the directory fsynced so the rename survives a crash."""
    directory = path.parent
    tmp = directory / f".{path.name}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def audit_checkpoint_write(*, output: Path | None = None) -> AuditCheckpoint:
    """Sign the chain's head and write it outside the database: to `output`, or a
    new file in AMANAH_AUDIT_CHECKPOINT_DIR named by its sequence number and time.
    Recorded in AuditCheckpoint (not in the trail: the checkpoint would no longer be
    its head). Raises AuditError (the file cannot be written) or DomainError (no
    signing key)."""
    content = audit_checkpoint_get()
    document = checkpoint_sign(content)
    taken_at = datetime.fromisoformat(content["taken_at"])
    if output is None:
        directory = Path(settings.AMANAH_AUDIT_CHECKPOINT_DIR)
        stamp = taken_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        output = directory / f"checkpoint-{content['seq']:012d}-{stamp}.json"
    try:
        output.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
        _write_atomically(output, (json.dumps(document, indent=2) + "\n").encode())
    except OSError as exc:
        raise AuditError(
            f"Cannot write {output}: {exc.strerror}", field="output"
        ) from exc
    row = AuditCheckpoint.objects.create(
        taken_at=taken_at,
        seq=content["seq"],
        count=content["count"],
        hash=content["hash"],
        path=str(output.resolve()),
        kid=document["signature"]["kid"],
    )
    logger.info("audit.checkpoint_written", extra={"seq": row.seq})
    return row


def chain_verification_record(
    *, report: ChainReport, source: str, checkpoint: str = ""
) -> ChainVerification:
    """Keep the outcome of one chain check (the cockpit shows the last)."""
    return ChainVerification.objects.create(
        verified_at=timezone.now(),
        ok=report.ok,
        count=report.count,
        head_seq=report.head_seq,
        reason=report.reason[:500],
        source=source,
        checkpoint=checkpoint[:1024],
    )
