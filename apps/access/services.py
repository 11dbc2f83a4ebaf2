"""Writes for need-to-know access: policy edits, interactions (with guardian grants),
reveals, the access log, and masked contact relays.

Lock order (apps/core/db.py): the actor's row (reveals count against it), then the
interaction (a reveal is opened under it; closing it ends its reveals), its reveals and
its permission (the grant's advisory lock), or the reveals being suspended, then the
audit chain.
"""

import hashlib
import hmac
import json
import logging
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from apps.access.contact import contact_backend
from apps.access.errors import (
    AccessError,
    AccessForbidden,
    RateLimited,
    RelayGone,
    RelayUnauthorized,
)
from apps.access.models import (
    AccessLogEntry,
    AccessPurpose,
    FieldPolicy,
    Interaction,
    InteractionKind,
    RelayEvent,
    RelayOutcome,
    Reveal,
    RevealStatus,
    Visibility,
)
from apps.access.selectors import (
    VIEW_CUSTOMER,
    AccessContext,
    LiveReveals,
    access_context,
    interaction_by_alias,
    interaction_current_for,
    live_reveals_of,
    policy_cell,
    policy_matrix,
    reveal_count_since,
)
from apps.accounts.models import GOVERNANCE_ROLES, Role, User
from apps.audit import services as audit
from apps.core.db import advisory_xact_lock, server_cursor
from apps.core.errors import NotFound
from apps.crypto.blind import normalize_phone
from apps.crypto.keys import data_keys_preload
from apps.customers.masking import mask_field, show_full
from apps.customers.models import Customer
from apps.customers.registry import PII_BY_NAME, PII_FIELDS, DataCategory
from apps.customers.selectors import customer_plain
from apps.customers.services import free_text_check

logger = logging.getLogger(__name__)

KIND_FOR_ROLE = {
    Role.SUPPORT_AGENT: InteractionKind.SUPPORT_CASE,
    Role.DELIVERY_AGENT: InteractionKind.DELIVERY,
}
REASON_MIN = 10


# Policy


@transaction.atomic
def policy_set(
    *, actor: User, role: str, category: str, visibility: str, revealable: bool
) -> FieldPolicy:
    """Change one cell of the matrix; audited with the old and new value."""
    if actor.role != Role.PRIVACY_ADMIN:
        raise AccessForbidden("Only privacy admins edit the access policy.")
    if role not in {r for r in Role.values if r != Role.CUSTOMER}:
        raise AccessError("Unknown staff role.", field="role")
    if category not in DataCategory.values:
        raise AccessError("Unknown data category.", field="category")
    if visibility not in Visibility.values:
        raise AccessError("Choose full, masked or hidden.", field="visibility")
    if visibility == Visibility.FULL:
        revealable = False  # nothing left to reveal
    before = policy_cell(policy_matrix(), role, category)
    cell, _ = FieldPolicy.objects.select_for_update(no_key=True).update_or_create(
        role=role,
        category=category,
        defaults={"visibility": visibility, "revealable": revealable},
    )
    if (before.visibility, before.revealable) != (visibility, revealable):
        audit.record(
            actor=actor,
            action="policy.changed",
            target_type="access.fieldpolicy",
            target_id=f"{role}:{category}",
            details={
                "from": before.visibility,
                "to": visibility,
                "revealable_from": before.revealable,
                "revealable_to": revealable,
            },
        )
    return cell


# Interactions


def _default_expiry(kind: str, now: datetime) -> datetime:
    return now + timedelta(hours=settings.AMANAH_INTERACTION_HOURS[kind])


@transaction.atomic
def interaction_open(
    *,
    actor: User,
    customer: Customer,
    kind: str,
    staff: User | None = None,
    expires_at: datetime | None = None,
) -> Interaction:
    """Open a support case or delivery and grant the staff member view permission.

    Support agents open cases for themselves; privacy admins may assign any agent.
    Raises AccessError, AccessForbidden.
    """
    staff = staff or actor
    if staff != actor and actor.role != Role.PRIVACY_ADMIN:
        raise AccessForbidden("Only privacy admins open interactions for someone else.")
    if actor.role not in {Role.SUPPORT_AGENT, Role.PRIVACY_ADMIN}:
        raise AccessForbidden("Your role may not open interactions.")
    if kind not in InteractionKind.values:
        raise AccessError("Choose support_case or delivery.", field="kind")
    if KIND_FOR_ROLE.get(staff.role) != kind:
        raise AccessError(
            "A support case goes to a support agent, a delivery to a delivery agent.",
            field="staff" if staff != actor else "kind",
        )
    if not staff.is_active:
        raise AccessError("That staff account is inactive.", field="staff")
    if customer.is_erased or customer.status == "closed":
        raise AccessError("This customer's account is closed.", field="customer")
    now = timezone.now()
    expires_at = expires_at or _default_expiry(kind, now)
    if expires_at <= now:
        raise AccessError("The expiry must be in the future.", field="expires_at")
    max_days = settings.AMANAH_INTERACTION_MAX_DAYS
    if expires_at > now + timedelta(days=max_days):
        raise AccessError(
            f"An interaction lasts at most {max_days} days.",
            field="expires_at",
        )
    interaction = Interaction(
        kind=kind,
        staff=staff,
        customer=customer,
        opened_by=actor,
        opened_at=now,
        expires_at=expires_at,
    )
    interaction.contact_alias = _provision_alias(interaction)
    interaction.save(force_insert=True)
    _grant_lock(staff_id=staff.pk, customer_id=customer.pk)
    assign_perm(VIEW_CUSTOMER, staff, customer)
    audit.record(
        actor=actor,
        action="interaction.opened",
        target=interaction,
        details={
            "kind": kind,
            "customer": str(customer.pk),
            "staff": staff.pk,
            "expires_at": expires_at.isoformat(),
        },
    )
    return interaction


def _provision_alias(interaction: Interaction) -> str:
    backend = contact_backend()
    for _ in range(5):
        alias = backend.provision(interaction_id=str(interaction.pk))
        if not Interaction.objects.filter(contact_alias=alias).exists():
            return alias
    raise AccessError("No contact alias could be reserved; try again.")


def _grant_lock(*, staff_id: int, customer_id: Any) -> None:
    """One writer at a time of a staff member's grant on a customer: a case closing
    while another opens must not delete the grant the new one counts on."""
    advisory_xact_lock(f"access.grant:{staff_id}:{customer_id}")


def _withdraw(interaction: Interaction, *, reason: str, now: datetime) -> list[int]:
    """Close the (locked) interaction: its reveals end, its grant goes unless another
    case holds it, its alias stops relaying. Returns the ids of the reveals ended."""
    interaction.closed_at = now
    interaction.close_reason = reason
    interaction.save(update_fields=["closed_at", "close_reason"])
    ended = _reveals_end(interaction=interaction, now=now)
    # Then the grant: any case opened meanwhile has committed, and is seen below.
    _grant_lock(staff_id=interaction.staff_id, customer_id=interaction.customer_id)
    still_open = Interaction.objects.filter(
        staff_id=interaction.staff_id,
        customer_id=interaction.customer_id,
        closed_at__isnull=True,
        expires_at__gt=now,
    ).exists()
    if not still_open:
        remove_perm(VIEW_CUSTOMER, interaction.staff, interaction.customer)
    contact_backend().release(
        alias=interaction.contact_alias, interaction_id=str(interaction.pk)
    )
    return ended


def _reveals_end(*, interaction: Interaction, now: datetime) -> list[int]:
    """End now the live reveals opened under `interaction`, which is ending; they stay
    granted (the rate limit and the monitoring rules count them) and end early. Locked
    first, child after parent: a reveal being opened under the interaction waits on
    its row, so every reveal granted under it is committed and found here."""
    ids = list(
        Reveal.objects.select_for_update(no_key=True)
        .filter(
            interaction=interaction, status=RevealStatus.GRANTED, expires_at__gt=now
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if ids:
        Reveal.objects.filter(pk__in=ids).update(expires_at=now)
    return ids


def _record_reveals_ended(
    *, actor: User | None, interaction: Interaction, ids: list[int], cause: str
) -> None:
    """Audit the reveals an ending interaction ended, as suspending reveals is."""
    if not ids:
        return
    audit.record(
        actor=actor,
        action="reveal.ended",
        target_type=Customer._meta.label_lower,
        target_id=str(interaction.customer_id),
        details={
            "count": len(ids),
            "reveals": ids,
            "interaction": str(interaction.pk),
            "cause": cause,
        },
    )


@transaction.atomic
def interaction_close(*, actor: User, interaction: Interaction) -> Interaction:
    """Close an interaction: the staff member's view permission and the reveals opened
    under it go with it (audited)."""
    interaction = Interaction.objects.select_for_update(no_key=True).get(
        pk=interaction.pk
    )
    if interaction.closed_at is not None:
        raise AccessError("This interaction is already closed.")
    ended = _withdraw(interaction, reason="closed", now=timezone.now())
    audit.record(actor=actor, action="interaction.closed", target=interaction)
    _record_reveals_ended(
        actor=actor, interaction=interaction, ids=ended, cause="interaction.closed"
    )
    return interaction


def demo_interactions_ensure(
    *, dispatcher: User, agents: list[User], each: int = 3
) -> int:
    """Give each demo agent a few open interactions, if they have none (seed_demo)."""
    opened = 0
    candidates = Customer.objects.filter(
        status="active", erased_at__isnull=True
    ).order_by("created_at")
    for offset, agent in enumerate(agents):
        if Interaction.objects.filter(
            staff=agent, closed_at__isnull=True, expires_at__gt=timezone.now()
        ).exists():
            continue
        for customer in candidates[offset * each : (offset + 1) * each]:
            interaction_open(
                actor=dispatcher,
                staff=agent,
                customer=customer,
                kind=KIND_FOR_ROLE[agent.role],
            )
            opened += 1
    return opened


def interactions_expire(*, batch_size: int = 500) -> int:
    """Close every interaction past its expiry, ending its reveals (the beat task).
    Returns how many."""
    done = 0
    while True:
        with transaction.atomic():
            batch = list(
                Interaction.objects.select_for_update(
                    no_key=True, skip_locked=True, of=("self",)
                )
                .select_related("staff", "customer")
                .filter(closed_at__isnull=True, expires_at__lte=timezone.now())
                .order_by("expires_at")[:batch_size]
            )
            if not batch:
                return done
            now = timezone.now()
            # The grants' advisory locks in one order, (staff, customer), whatever
            # the expiry order: two overlapping runs may each hold cases of the same
            # agent with the same customers.
            batch.sort(key=lambda i: (i.staff_id, str(i.customer_id)))
            ended = {
                interaction.pk: _withdraw(interaction, reason="expired", now=now)
                for interaction in batch
            }
            # The audit chain last: once it is held, no permission or reveal row is
            # waited on.
            for interaction in batch:
                audit.record(
                    actor=None, action="interaction.expired", target=interaction
                )
                _record_reveals_ended(
                    actor=None,
                    interaction=interaction,
                    ids=ended[interaction.pk],
                    cause="interaction.expired",
                )
            done += len(batch)
        logger.info("access.interactions_expired", extra={"count": len(batch)})


# Reading customers


def _purpose(actor: User, kind: str | None, capped: bool) -> str:
    if kind is not None:
        return kind
    if actor.role in GOVERNANCE_ROLES:
        return AccessPurpose.GOVERNANCE
    return AccessPurpose.SEARCH


def _shape(
    *,
    actor: User,
    customer: Customer,
    matrix: dict,
    revealed: set[str],
    capped: bool,
) -> tuple[dict[str, Any], dict[str, str]]:
    data = customer_plain(customer)
    shown: dict[str, str] = {}
    for spec in PII_FIELDS:
        visibility = policy_cell(matrix, actor.role, spec.category).visibility
        if spec.name in revealed:
            visibility = Visibility.FULL
        if capped and visibility == Visibility.FULL:
            visibility = Visibility.MASKED
        if visibility == Visibility.HIDDEN:
            continue
        value = getattr(customer, spec.name)
        if visibility == Visibility.FULL:
            data[spec.name] = show_full(value)
        else:
            data[spec.name] = mask_field(spec.name, value)
        if value is not None:
            shown[spec.name] = visibility
    data["shown"] = shown
    return data, shown


def _access_reasons(
    *, actor: User, customers: list[Customer]
) -> tuple[dict[Any, tuple[Any, str]], dict[Any, LiveReveals]]:
    """Each customer's open interaction (id, kind) and live reveals by the actor. Rows
    from the agents' selectors carry them already (`customers_assigned_to`: the
    interaction; `customers_assigned_list`: both); the rest take `access_context`."""
    with_interaction = all(getattr(c, "open_interaction_id", None) for c in customers)
    with_reveals = all(hasattr(c, "live_reveals") for c in customers)
    context: AccessContext | None = None
    if customers and not (with_interaction and with_reveals):
        context = access_context(
            actor=actor,
            customer_ids=[c.pk for c in customers],
            include_interactions=not with_interaction,
            include_reveals=not with_reveals,
        )
    interactions = (
        {c.pk: (c.open_interaction_id, c.open_interaction_kind) for c in customers}
        if with_interaction
        else {pk: (i.pk, i.kind) for pk, i in context.interactions.items()}
    )
    reveals = (
        {c.pk: c.live_reveals for c in customers if c.live_reveals}
        if with_reveals
        else {pk: live_reveals_of(found) for pk, found in context.reveals.items()}
    )
    return interactions, reveals


def customers_read(
    *,
    actor: User,
    customers: list[Customer],
    capped: bool = False,
    matrix: dict | None = None,
) -> list[dict[str, Any]]:
    """Each customer as the actor may see them, and one access-log row per customer,
    written in one insert. `capped`: search results outside the actor's assignments,
    shown masked at most. `matrix`: the policy, if the caller has read it already."""
    customers = list(customers)
    data_keys_preload(c.data_key_id for c in customers)
    matrix = policy_matrix() if matrix is None else matrix
    interactions, reveals = _access_reasons(actor=actor, customers=customers)
    results, entries = [], []
    for customer in customers:
        interaction_id, kind = interactions.get(customer.pk, (None, None))
        live = None if capped else reveals.get(customer.pk)
        data, shown = _shape(
            actor=actor,
            customer=customer,
            matrix=matrix,
            revealed=live.fields if live else frozenset(),
            capped=capped,
        )
        if live:
            data["reveal_expires_at"] = live.expires_at
        results.append(data)
        if shown:
            entries.append(
                (
                    customer.pk,
                    shown,
                    _purpose(actor, kind, capped),
                    interaction_id,
                    live.latest_id if live else None,
                )
            )
    access_log_write(actor=actor, entries=entries)
    return results


def access_log_write(
    *, actor: User, entries: list[tuple[Any, dict[str, str], str, Any, int | None]]
) -> None:
    """One access-log row per (customer, fields shown, purpose, interaction, reveal), in
    one statement: on PostgreSQL the rows travel as arrays, one round trip (no
    transaction around it) whatever the page size."""
    if not entries:
        return
    now = timezone.now()
    if connection.vendor != "postgresql":
        AccessLogEntry.objects.bulk_create(
            AccessLogEntry(
                staff=actor,
                staff_role=actor.role,
                customer_id=customer_id,
                fields=fields,
                purpose=purpose,
                interaction_id=interaction_id,
                reveal_id=reveal_id,
                created_at=now,
            )
            for customer_id, fields, purpose, interaction_id, reveal_id in entries
        )
        return
    columns = list(zip(*entries, strict=True))
    # Server-side binding with binary arrays: no quoting of the rows in Python.
    with server_cursor() as cursor:
        cursor.execute(
            _ACCESS_LOG_INSERT,
            [
                actor.pk,
                actor.role,
                now,
                list(columns[0]),
                [json.dumps(fields) for fields in columns[1]],
                list(columns[2]),
                list(columns[3]),
                list(columns[4]),
            ],
        )


def access_log_write_masked(
    *, actor: User, shown: dict[Any, list[str]], purpose: str | None = None
) -> None:
    """Log the masked values a page outside the staff pages and the API showed (the
    Django admin): one row per customer, naming the fields shown masked, for the
    purpose a search of the actor's would have (governance roles: governance), or
    `purpose`. Through `access_log_write`, in one insert."""
    why = purpose or _purpose(actor, None, capped=True)
    access_log_write(
        actor=actor,
        entries=[
            (customer_id, dict.fromkeys(fields, Visibility.MASKED), why, None, None)
            for customer_id, fields in shown.items()
            if fields
        ],
    )


_ACCESS_LOG_INSERT = (
    "INSERT INTO access_accesslogentry (staff_id, staff_role, customer_id, "
    "fields, purpose, interaction_id, reveal_id, created_at) "
    "SELECT %b, %b, t.c, t.f::jsonb, t.p, t.i, t.r, %b "
    "FROM unnest(%b::uuid[], %b::text[], %b::text[], %b::uuid[], %b::bigint[]) "
    "AS t(c, f, p, i, r)"
)


# Reveals


def _refuse_reveal(
    *,
    actor: User,
    customer: Customer,
    fields: list[str],
    reason: str,
    why: str,
    interaction,
) -> None:
    with transaction.atomic():
        reveal = Reveal.objects.create(
            staff=actor,
            customer=customer,
            interaction=interaction,
            fields=fields,
            reason=reason,
            status=RevealStatus.REFUSED,
            refusal=why,
            created_at=timezone.now(),
        )
        audit.record(
            actor=actor,
            action="reveal.refused",
            target=customer,
            details={"reveal": reveal.pk, "fields": fields, "why": why},
        )


def reveal_open(
    *,
    actor: User,
    customer: Customer,
    fields: list[str],
    reason: str,
    returns_values: bool = True,
) -> tuple[Reveal, dict[str, Any]]:
    """Show named fields in full for AMANAH_REVEAL_MINUTES, for a reason.

    With `returns_values` (the API) the values come back and their look is logged
    here; without (the staff page, which shows them on the page it redirects to) none
    are decrypted and the page's read logs the look, naming the reveal: one row a
    reveal either way.

    The customer must already be visible to the actor. An agent's reveal is opened
    under their open interaction with the customer and ends with it (never later than
    its expiry); governance roles see customers without one, and theirs last the
    window. Raises AccessError (400), AccessForbidden (403, audited as a refused
    reveal), NotFound (an agent with no open interaction), RateLimited (429).
    """
    fields = list(dict.fromkeys(fields))
    if not fields or any(name not in PII_BY_NAME for name in fields):
        raise AccessError(
            "Name fields from: " + ", ".join(PII_BY_NAME) + ".", field="fields"
        )
    reason = (reason or "").strip()
    if len(reason) < REASON_MIN:
        raise AccessError(
            f"Give a reason of at least {REASON_MIN} characters.", field="reason"
        )
    # The reason is kept for good (reveals table, audit trail): not the customer's data.
    free_text_check(text=reason, field="reason", customer=customer, error=AccessError)
    if customer.is_erased:
        raise AccessError("This customer was erased; there is nothing to reveal.")

    interaction = interaction_current_for(actor=actor, customer=customer)
    if interaction is None and actor.role in KIND_FOR_ROLE:
        raise NotFound("No such customer.")
    matrix = policy_matrix()
    refused = [
        name
        for name in fields
        if not policy_cell(matrix, actor.role, PII_BY_NAME[name].category).revealable
        and policy_cell(matrix, actor.role, PII_BY_NAME[name].category).visibility
        != Visibility.FULL
    ]
    if refused:
        _refuse_reveal(
            actor=actor,
            customer=customer,
            fields=fields,
            reason=reason,
            why="role may not reveal: " + ", ".join(refused),
            interaction=interaction,
        )
        raise AccessForbidden(
            "Your role may not reveal: " + ", ".join(refused) + ".", field="fields"
        )

    with transaction.atomic():
        # Lock the actor's row: concurrent reveals must not slip past the hourly
        # limit. NO KEY UPDATE: rows that merely refer to the actor (their audit
        # events, alerts about them) are still written meanwhile.
        User.objects.select_for_update(no_key=True).filter(pk=actor.pk).first()
        now = timezone.now()
        window_ends = now + timedelta(minutes=settings.AMANAH_REVEAL_MINUTES)
        if interaction is not None:
            # Then the interaction, still open: a close that committed first is seen
            # here, and one that comes later waits, then ends this reveal with it.
            interaction = (
                Interaction.objects.select_for_update(no_key=True)
                .filter(pk=interaction.pk, closed_at__isnull=True, expires_at__gt=now)
                .first()
            )
            if interaction is None:
                raise NotFound("No such customer.")
            window_ends = min(window_ends, interaction.expires_at)
        if reveal_count_since(actor=actor, since=now - timedelta(hours=1)) >= (
            settings.AMANAH_REVEALS_PER_HOUR
        ):
            raise RateLimited(
                f"At most {settings.AMANAH_REVEALS_PER_HOUR} reveals an hour; "
                "try again later."
            )
        reveal = Reveal.objects.create(
            staff=actor,
            customer=customer,
            interaction=interaction,
            fields=fields,
            reason=reason,
            status=RevealStatus.GRANTED,
            created_at=now,
            expires_at=window_ends,
        )
        values = {}
        if returns_values:
            values = {name: show_full(getattr(customer, name)) for name in fields}
            AccessLogEntry.objects.create(
                staff=actor,
                staff_role=actor.role,
                customer=customer,
                fields=dict.fromkeys(fields, Visibility.FULL),
                purpose=_purpose(
                    actor, interaction.kind if interaction else None, False
                ),
                interaction=interaction,
                reveal=reveal,
                created_at=now,
            )
        audit.record(
            actor=actor,
            action="reveal.opened",
            target=customer,
            details={
                "reveal": reveal.pk,
                "fields": fields,
                "reason": reason,
                "minutes": settings.AMANAH_REVEAL_MINUTES,
            },
        )
        # Suspicious-access rules for this agent, once the reveal is committed; a
        # broker that cannot take the task is logged, it does not undo the answer.
        from apps.monitoring.services import reveal_rules_schedule

        staff_id = actor.pk
        transaction.on_commit(
            lambda: reveal_rules_schedule(staff_id=staff_id), robust=True
        )
    return reveal, values


def reveals_live_lock(*, staff: User) -> list[int]:
    """Lock the staff member's row, then their live reveals, and return the reveals'
    ids, in the caller's transaction. With the row held no reveal of theirs is granted
    until the transaction ends (`reveal_open` locks it first), so the set stays the
    one locked here: a caller that audits before suspending them (after the audit
    chain no new row may be locked) takes them first, as the lock order says
    (apps/core/db.py)."""
    User.objects.select_for_update(no_key=True).filter(pk=staff.pk).first()
    return list(
        Reveal.objects.select_for_update(no_key=True)
        .filter(staff=staff, status=RevealStatus.GRANTED, expires_at__gt=timezone.now())
        .order_by("pk")
        .values_list("pk", flat=True)
    )


@transaction.atomic
def reveals_suspend(*, actor: User | None, staff: User, cause: str = "") -> int:
    """End the staff member's live reveals now (a monitoring alert). Audited; returns
    how many."""
    now = timezone.now()
    ids = reveals_live_lock(staff=staff)
    if ids:
        Reveal.objects.filter(pk__in=ids).update(
            status=RevealStatus.SUSPENDED, expires_at=now
        )
    audit.record(
        actor=actor,
        action="reveal.suspended",
        target=staff,
        details={"count": len(ids), "reveals": ids, "cause": cause},
    )
    logger.info(
        "access.reveals_suspended", extra={"staff": staff.pk, "count": len(ids)}
    )
    return len(ids)


# Masked contact relay


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


# Disposal (retention) ---------------------------------------------------------------


def access_log_delete_bulk(*, entry_ids: list[int]) -> int:
    return AccessLogEntry.objects.filter(pk__in=entry_ids).delete()[0]


def interactions_delete_bulk(*, interaction_ids: list[Any]) -> int:
    """Delete closed interactions with their relay events (contact sessions)."""
    from apps.core.fastdelete import delete_cascade

    return delete_cascade(Interaction, interaction_ids)
