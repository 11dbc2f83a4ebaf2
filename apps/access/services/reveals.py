"""Reveals: named fields of one customer shown in full for a few minutes, for a
reason, under the agent's open interaction with the customer; and their suspension
(a monitoring alert).

Lock order (apps/core/db.py): the actor's row (reveals count against it), then the
interaction a reveal is opened under, or the reveals being suspended, then the audit
chain. A reveal reads whether an alert holds the actor's reveals suspended under the
actor's row, without locking the alert (an alert is locked before that row, never
after it).
"""

import logging
import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.access import watchers
from apps.access.errors import (
    REVEALS_SUSPENDED,
    AccessError,
    AccessForbidden,
    RateLimited,
    RevealsSuspended,
)
from apps.access.models import Interaction, Reveal, RevealStatus, Visibility
from apps.access.selectors import (
    AssignedCustomer,
    customer_of,
    interaction_current_for,
    policy_cell,
    policy_matrix,
    reveal_count_since,
)
from apps.access.services.interactions import KIND_FOR_ROLE
from apps.access.services.log import (
    AccessLogRow,
    access_log_purpose,
    access_log_write,
)
from apps.accounts.models import User
from apps.accounts.services import user_lock
from apps.audit import services as audit
from apps.core.errors import NotFound
from apps.core.reasons import reason_require
from apps.customers.masking import show_full
from apps.customers.models import Customer, Restriction, RestrictionSource
from apps.customers.registry import PII_BY_NAME
from apps.customers.selectors import customer_restrictions_active
from apps.customers.services import free_text_check

logger = logging.getLogger(__name__)


def _refuse_reveal(
    *,
    actor: User,
    customer: Customer,
    fields: list[str],
    reason: str,
    why: str,
    interaction: Interaction | None,
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


def _words(text: str) -> str:
    return " ".join(text.split()).casefold()


def restriction_names(restriction: Restriction) -> list[str]:
    """What a reveal's reason must name for this restriction: its purpose's ground,
    and for a legal hold's the hold too, its purpose's text after the ":" ("legal
    hold 12", or the reason of a hold on the customer)."""
    ground, _, rest = restriction.purpose.partition(":")
    names = [ground.strip()]
    if restriction.source == RestrictionSource.LEGAL_HOLD and rest.strip():
        names.append(rest.strip())
    return [name for name in names if name]


def _says(said: str, name: str) -> bool:
    """Whether `said` (`_words`) holds `name` as whole words ("legal claims" is not
    in "illegal claims")."""
    return re.search(rf"(?<!\w){re.escape(_words(name))}(?!\w)", said) is not None


def reason_names_restriction(reason: str, restrictions: list[Restriction]) -> bool:
    """Whether the reason names what one of these restrictions requires
    (`restriction_names`), as whole words, in any case and spacing."""
    said = _words(reason)
    return any(
        all(_says(said, name) for name in restriction_names(r)) for r in restrictions
    )


def reveal_open(
    *,
    actor: User,
    customer: Customer | AssignedCustomer,
    fields: list[str],
    reason: str,
    returns_values: bool = True,
) -> tuple[Reveal, dict[str, Any]]:
    """Show named fields in full for AMANAH_REVEAL_MINUTES, for a reason.

    With `returns_values` (the API) the values come back and their look is logged
    here; without (the staff page, which shows them on the page it redirects to) none
    are decrypted and the page's read logs the look, naming the reveal: one row a
    reveal either way.

    The customer must already be visible to the actor (an `AssignedCustomer` brings
    the agent's open interaction with it). An agent's reveal is opened under their
    open interaction with the customer and ends with it (never later than its
    expiry); governance roles see customers without one, and theirs last the window.
    Once it commits, the access watchers hear of it (apps/access/watchers.py).
    A restricted customer (GDPR art. 18) is revealed only for a reason naming the
    restriction's purpose. While an alert holds the actor's reveals suspended
    (`watchers.reveals_suspended_since`, the definition the customer page's notice
    uses too) none is opened.
    Raises AccessError (400), AccessForbidden (403, audited as a refused reveal),
    NotFound (an agent with no open interaction), RevealsSuspended (403; said before
    the hourly limit, which the reveals ended by the suspension still count against
    once it is lifted), RateLimited (429).
    """
    found, customer = customer, customer_of(customer)
    fields = list(dict.fromkeys(fields))
    if not fields or any(name not in PII_BY_NAME for name in fields):
        raise AccessError(
            "Name fields from: " + ", ".join(PII_BY_NAME) + ".", field="fields"
        )
    reason = reason_require(reason, field="reason", error=AccessError)
    # The reason is kept for good (reveals table, audit trail): not the customer's data.
    free_text_check(text=reason, field="reason", customer=customer, error=AccessError)
    if customer.is_erased:
        raise AccessError("This customer was erased; there is nothing to reveal.")

    interaction = interaction_current_for(actor=actor, customer=found)
    if interaction is None and actor.role in KIND_FOR_ROLE:
        raise NotFound("No such customer.")
    # A restricted customer's data is used only for the restriction's stated purpose
    # (GDPR art. 18(2)): the reason must name it.
    restrictions = customer_restrictions_active(customer=customer)
    if restrictions and not reason_names_restriction(reason, restrictions):
        purposes = "; ".join(f"“{r.purpose}”" for r in restrictions)
        grounds = " or ".join(
            dict.fromkeys(
                " and ".join(f"“{name}”" for name in restriction_names(r))
                for r in restrictions
            )
        )
        _refuse_reveal(
            actor=actor,
            customer=customer,
            fields=fields,
            reason=reason,
            why="restricted: the reason does not name its purpose",
            interaction=interaction,
        )
        raise AccessForbidden(
            "This customer's data is restricted: its use is limited to "
            f"{purposes}. Name {grounds} in your reason.",
            field="reason",
        )
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
        # limit.
        user_lock(user_id=actor.pk)
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
        # Then whether an alert holds the actor's reveals suspended, read (not locked)
        # under the actor's row: every suspension (`reveals_suspend`, which an alert's
        # `_suspend` calls before it marks the alert `reveals_suspended_at`) takes
        # that row first and holds it until it commits. So a suspension committed
        # before this reveal took the row is seen here (each statement reads what
        # has committed), and one coming later waits for this reveal to commit, then
        # ends it with the actor's other live reveals. Before the hourly limit: a
        # suspended actor is told so, not to wait an hour.
        if watchers.reveals_suspended_since(staff_id=actor.pk) is not None:
            logger.info("access.reveal_suspended_refused", extra={"staff": actor.pk})
            raise RevealsSuspended(REVEALS_SUSPENDED)
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
            access_log_write(
                actor=actor,
                entries=[
                    AccessLogRow(
                        customer.pk,
                        dict.fromkeys(fields, Visibility.FULL),
                        access_log_purpose(
                            actor=actor,
                            kind=interaction.kind if interaction else None,
                        ),
                        interaction.pk if interaction else None,
                        reveal.pk,
                    )
                ],
                at=now,
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
        # Monitoring's rules for this agent, once the reveal is committed; a watcher
        # that fails (a broker that cannot take the task) is logged, it does not
        # undo the answer.
        watchers.reveal_opened_notify(staff_id=actor.pk)
    return reveal, values


def reveals_live_lock(*, staff: User) -> list[int]:
    """Lock the staff member's row, then their live reveals, and return the reveals'
    ids, in the caller's transaction. With the row held no reveal of theirs is granted
    until the transaction ends (`reveal_open` locks it first), so the set stays the
    one locked here: a caller that audits before suspending them (after the audit
    chain no new row may be locked) takes them first, as the lock order says
    (apps/core/db.py)."""
    user_lock(user_id=staff.pk)
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
