"""Reads of the audit trail, and verification of its hash chain."""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from django.apps import apps
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.text import capfirst

from apps.accounts.selectors import user_ids_by_username
from apps.audit.chain import GENESIS_HASH, event_hash
from apps.audit.errors import AuditError
from apps.audit.models import (
    AuditChainHead,
    AuditCheckpoint,
    AuditEvent,
    ChainVerification,
)
from apps.audit.signatures import CHECKPOINT_TYPE, checkpoint_signature_verify
from apps.core.errors import DomainError

# A checkpoint is a few hundred bytes; a file far bigger is not one.
CHECKPOINT_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    count: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    bad_id: int | None = None
    reason: str = ""

    @property
    def summary(self) -> str:
        if self.ok:
            return f"Audit chain intact: {self.count} events, head #{self.head_seq}."
        if self.bad_id:
            where = f" at row #{self.bad_seq} (id {self.bad_id})"
        else:
            where = " at the tail" if self.count else ""
        return f"Audit chain broken{where}: {self.reason}"


def audit_event_list(
    *,
    action: str = "",
    actor_username: str = "",
    target_type: str = "",
    target_id: str = "",
    since: date | None = None,
    until: date | None = None,
) -> QuerySet[AuditEvent]:
    """Events newest first, narrowed by any of the given filters."""
    events = AuditEvent.objects.select_related("actor").order_by("-seq")
    if action:
        events = events.filter(action=action)
    if actor_username:
        events = events.filter(actor__in=user_ids_by_username(username=actor_username))
    if target_type:
        events = events.filter(target_type=target_type)
    if target_id:
        events = events.filter(target_id=target_id)
    tz = timezone.get_current_timezone()
    if since:
        events = events.filter(created_at__gte=datetime.combine(since, time.min, tz))
    if until:
        events = events.filter(created_at__lte=datetime.combine(until, time.max, tz))
    return events


def audit_event_list_between(
    *,
    actions: Iterable[str],
    after: datetime,
    until: datetime,
    actor_id: int | None = None,
    actor_roles: Iterable[str] | None = None,
) -> QuerySet[AuditEvent]:
    """Events of these actions recorded after `after` and up to `until`; of one actor,
    and of actors in these roles, when given. A queryset the monitoring rules
    aggregate over."""
    events = AuditEvent.objects.filter(
        action__in=actions, created_at__gt=after, created_at__lte=until
    )
    if actor_id is not None:
        events = events.filter(actor_id=actor_id)
    if actor_roles is not None:
        events = events.filter(actor_role__in=actor_roles)
    return events


# Targets whose model name alone reads poorly on the trail.
TARGET_NOUNS = {
    "accounts.user": "User account",
    "customers.customer": "Customer",
}


def audit_target_label(*, target_type: str, target_id: str) -> str:
    """An event's target as people read it ("Customer 1f2e3d4c…", "User account 3"):
    the model's name and the id, a long one (a UUID) cut to its first 8 characters.
    From the event's own columns only: nothing is looked up, nothing decrypted."""
    if not target_type:
        return ""
    noun = TARGET_NOUNS.get(target_type)
    if noun is None:
        try:
            noun = capfirst(str(apps.get_model(target_type)._meta.verbose_name))
        except (LookupError, ValueError):
            noun = target_type
    short = f"{target_id[:8]}…" if len(target_id) > 12 else target_id
    return f"{noun} {short}".strip()


def audit_action_list() -> list[str]:
    """Every action name that occurs in the trail, for filter menus."""
    return list(
        AuditEvent.objects.order_by("action")
        .values_list("action", flat=True)
        .distinct()
    )


def audit_checkpoint_get() -> dict[str, Any]:
    """The chain's head (row count and hash), to be signed and kept outside the
    database (`audit_checkpoint_write`)."""
    head = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first()
    seq, head_hash = head if head else (0, GENESIS_HASH)
    return {
        "type": CHECKPOINT_TYPE,
        "seq": seq,
        "count": AuditEvent.objects.count(),
        "hash": head_hash,
        "taken_at": timezone.now().isoformat(),
    }


def _json_file_read(path: Path, *, what: str, field: str) -> Any:
    """A small JSON file, parsed. Raises AuditError naming `what` it should be."""
    try:
        if path.stat().st_size > CHECKPOINT_MAX_BYTES:
            raise ValueError("too big")
        return json.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise AuditError(f"{what} not found: {path}", field=field) from exc
    except (OSError, ValueError, RecursionError) as exc:
        raise AuditError(f"{what} is not {_NOT[field]}.", field=field) from exc


_NOT = {
    "checkpoint": "a checkpoint (not a signed JSON document)",
    "keys": "a JWKS (not a small JSON document)",
}


def audit_checkpoint_load(path: Path, *, keys: Path | None = None) -> dict[str, Any]:
    """Read a checkpoint file and check its signature first: against this
    installation's public keys, or those of the JWKS file `keys` (a saved copy of
    the published keys). Returns its `seq`, `hash` and the signing key's `kid`.
    Raises AuditError (not found, not a checkpoint, unsigned, signed by an unknown
    key, altered)."""
    data = _json_file_read(path, what="Checkpoint file", field="checkpoint")
    jwks = _json_file_read(keys, what="Key file", field="keys") if keys else None
    if isinstance(data, dict) and "signature" not in data:
        raise AuditError(
            "The checkpoint is not signed: only a checkpoint signed by this "
            "installation's key is trusted (write one with audit_checkpoint).",
            field="checkpoint",
        )
    try:
        kid = checkpoint_signature_verify(data, jwks=jwks)
    except DomainError as exc:
        raise AuditError(str(exc), field="checkpoint") from exc
    try:
        return {"seq": int(data["seq"]), "hash": str(data["hash"]), "kid": kid}
    except (ValueError, KeyError, TypeError) as exc:
        raise AuditError(
            "Checkpoint file is not a checkpoint (needs 'seq' and 'hash').",
            field="checkpoint",
        ) from exc


def audit_checkpoint_last() -> AuditCheckpoint | None:
    """The checkpoint written last (`.taken_at, .seq, .hash, .path`), or None."""
    return AuditCheckpoint.objects.order_by("-taken_at", "-pk").first()


def audit_verification_last() -> ChainVerification | None:
    """The last check of the chain (`.verified_at, .ok, .count, .reason`), or None."""
    return ChainVerification.objects.order_by("-verified_at", "-pk").first()


def audit_chain_verify(*, checkpoint: dict[str, Any] | None = None) -> ChainReport:
    """Walk the chain in order; report the first row edited, deleted or moved, and a
    tail cut or emptied short of the checkpoint or of the furthest the chain reached."""
    # The head first: every event it names was committed before the walk's snapshot.
    reached = AuditChainHead.objects.values_list("seq", "hash").first()
    expected_seq, prev_hash, count = 1, GENESIS_HASH, 0
    reached_hash = ""
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=5000):
        reason = ""
        if event.seq != expected_seq:
            reason = (
                f"expected sequence #{expected_seq}: a row before it was deleted"
                if event.seq > expected_seq
                else f"expected sequence #{expected_seq}: rows were reordered"
            )
        elif event.prev_hash != prev_hash:
            reason = "it does not link to the row before it (reordered or inserted)"
        elif event_hash(event) != event.hash:
            reason = "its content does not match its hash (edited)"
        if reason:
            return ChainReport(
                False, count, expected_seq - 1, prev_hash, event.seq, event.pk, reason
            )
        if reached is not None and event.seq == reached[0]:
            reached_hash = event.hash
        expected_seq, prev_hash, count = expected_seq + 1, event.hash, count + 1

    head_seq = expected_seq - 1

    def broken(
        reason: str, bad_seq: int | None = None, bad_id: int | None = None
    ) -> ChainReport:
        return ChainReport(False, count, head_seq, prev_hash, bad_seq, bad_id, reason)

    if checkpoint is not None:
        if checkpoint["seq"] > head_seq:
            return broken(
                f"the checkpoint's event #{checkpoint['seq']} is missing: "
                + (
                    f"the chain ends at #{head_seq} (rows were cut from its tail)"
                    if count
                    else "no events remain (the trail was emptied)"
                )
            )
        at = (
            AuditEvent.objects.filter(seq=checkpoint["seq"])
            .values_list("pk", "hash")
            .first()
        )
        if checkpoint["seq"] > 0 and (at is None or at[1] != checkpoint["hash"]):
            return broken(
                "its hash differs from the checkpoint: the chain was rewritten",
                checkpoint["seq"],
                at[0] if at else None,
            )
    if reached is not None:
        reached_seq, expected_hash = reached
        if reached_seq > head_seq:
            if count:
                return broken(
                    f"the chain ends at #{head_seq} but once reached #{reached_seq}: "
                    "rows were cut from its tail"
                )
            return broken(
                f"no events remain but the chain once reached #{reached_seq}: "
                "the trail was emptied"
            )
        if reached_hash != expected_hash:
            at_pk = AuditEvent.objects.filter(seq=reached_seq).values_list(
                "pk", flat=True
            )
            return broken(
                "its hash differs from the chain head's: the tail was rewritten",
                reached_seq,
                at_pk.first(),
            )
    return ChainReport(True, count, head_seq, prev_hash)
