"""Interactions: a support case or a delivery opens a staff member's access to one
customer (a guardian object permission) until it closes or expires; its reveals end
with it, and its masked contact alias stops relaying.

Lock order (apps/core/db.py): the interaction (closing it ends its reveals), then its
reveals, then its permission (the grant's advisory lock), then the audit chain. A
reveal being opened locks its interaction after the staff member's row
(apps/access/services/reveals.py).
"""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from apps.access.contact import contact_backend
from apps.access.errors import AccessError, AccessForbidden
from apps.access.models import Interaction, InteractionKind, Reveal, RevealStatus
from apps.access.selectors import VIEW_CUSTOMER
from apps.accounts.models import Role, User
from apps.audit import services as audit
from apps.core.db import advisory_xact_lock
from apps.customers.models import Customer

logger = logging.getLogger(__name__)

# The kind of interaction each agent role works under.
KIND_FOR_ROLE: dict[str, str] = {
    Role.SUPPORT_AGENT: InteractionKind.SUPPORT_CASE,
    Role.DELIVERY_AGENT: InteractionKind.DELIVERY,
}


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
