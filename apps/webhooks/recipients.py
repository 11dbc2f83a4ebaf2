"""The hook through which webhooks learns which recipients received a customer's data
(GDPR art. 19), without importing the inventory app above it.

Inventory owns recipients and the record of what was shared with each; webhooks sits
below it (docs/ARCHITECTURE.md). So webhooks owns this registry and
`InventoryConfig.ready()` registers a function answering, for some customers, the
endpoints of the recipients that received their data, with those recipients' names:
{customer_id: {endpoint_id: [name]}}. It is called inside the emitting transaction,
before anything the erasure deletes.

The registry is per process, filled as each process starts: configuration, not state
shared between processes.
"""

from collections.abc import Iterable
from typing import Any, Protocol
from uuid import UUID


class RecipientEndpoints(Protocol):
    def __call__(
        self, *, customer_ids: Iterable[Any]
    ) -> dict[UUID, dict[UUID, list[str]]]: ...


_registered: list[RecipientEndpoints] = []


def recipient_endpoints_register(answer: RecipientEndpoints) -> None:
    """Have `answer(customer_ids=...)` name the recipients' endpoints of customers.
    Registering it again changes nothing."""
    if answer not in _registered:
        _registered.append(answer)


def recipient_endpoints_for(
    *, customer_ids: Iterable[Any]
) -> dict[UUID, dict[UUID, list[str]]]:
    """{customer_id: {endpoint id: recipients' names}} of the recipients that
    received their data."""
    ids = [UUID(str(c)) for c in customer_ids]
    found: dict[UUID, dict[UUID, list[str]]] = {}
    for answer in _registered:
        for customer_id, endpoints in answer(customer_ids=ids).items():
            theirs = found.setdefault(UUID(str(customer_id)), {})
            for endpoint_id, names in endpoints.items():
                known = theirs.setdefault(UUID(str(endpoint_id)), [])
                known.extend(n for n in names if n not in known)
    return found
