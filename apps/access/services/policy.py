"""The access policy: which role sees which category of customer data, and how.

Lock order (apps/core/db.py): the policy cell's row being changed (`FOR NO KEY
UPDATE`; a cell not stored yet is inserted, and its unique key makes a concurrent
insert of the same cell wait), then the audit chain.
"""

from django.db import transaction

from apps.access.errors import AccessError, AccessForbidden
from apps.access.models import FieldPolicy, Visibility
from apps.access.selectors import policy_cell, policy_matrix
from apps.accounts.models import Role, User
from apps.audit import services as audit
from apps.customers.registry import DataCategory


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
