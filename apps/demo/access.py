"""Demo support cases and deliveries, for `seed_demo`."""

from apps.access.selectors import interaction_list_for
from apps.access.services import KIND_FOR_ROLE, interaction_open
from apps.accounts.models import User
from apps.customers.models import CustomerStatus
from apps.customers.selectors import customers_not_erased


def demo_interactions_ensure(
    *, dispatcher: User, agents: list[User], each: int = 3
) -> int:
    """Give each demo agent a few open interactions, if they have none (seed_demo)."""
    opened = 0
    candidates = customers_not_erased().filter(status=CustomerStatus.ACTIVE)
    candidates = candidates.order_by("created_at")
    for offset, agent in enumerate(agents):
        if interaction_list_for(actor=agent).exists():
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
