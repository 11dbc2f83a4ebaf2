"""Demo legal holds, for `seed_demo`."""

from apps.accounts.models import User
from apps.retention.models import Covers
from apps.retention.selectors import disposable, hold_list, policy_list
from apps.retention.services import hold_place


def demo_holds_ensure(*, actor: User, count: int = 3) -> int:
    """Hold a few overdue closed accounts, if no hold exists yet (seed_demo)."""
    if hold_list().exists():
        return 0
    policy = policy_list(enabled_only=True, covers=Covers.CLOSED_ACCOUNTS).first()
    if policy is None:
        return 0
    # The longest overdue first: their accounts closed first.
    customers = list(disposable(policy).order_by("closed_at")[:count])
    for customer in customers:
        hold_place(
            actor=actor,
            customer=customer,
            reason="Demo: chargeback dispute pending with the card network",
        )
    return len(customers)
