"""Reading customers: each customer as the actor may see them under the access
policy (full, masked or hidden per field; a live reveal shows its fields in full),
and one access-log row per customer shown, written in one insert."""

from collections.abc import Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from apps.access.models import Interaction, Visibility
from apps.access.selectors import (
    AGENT_ROLES,
    AssignedCustomer,
    LiveReveals,
    access_context,
    customer_of,
    customers_assigned_list,
    desk_fields,
    live_reveals_of,
    policy_cell,
    policy_matrix,
)
from apps.access.services.log import (
    AccessLogRow,
    access_log_purpose,
    access_log_write,
)
from apps.accounts.models import GOVERNANCE_ROLES, User
from apps.crypto.keys import data_keys_preload
from apps.customers.masking import mask_field, show_full
from apps.customers.models import Customer
from apps.customers.registry import PII_BY_NAME, PII_FIELDS, DataCategory
from apps.customers.selectors import customer_plain, customer_restrictions_active_for


def _unrevealed(matrix: dict, role: str, category: str, restricted: bool) -> str:
    """A field's visibility for the role without a reveal."""
    visibility = policy_cell(matrix, role, category).visibility
    # Restricted (GDPR art. 18): what the policy shows in full is masked; only a
    # reveal, whose reason names the restriction's purpose, shows it.
    if restricted and visibility == Visibility.FULL:
        return Visibility.MASKED
    return visibility


def _opened(
    *,
    actor: User,
    matrix: dict,
    shown: dict[str, str],
    restricted: bool,
    revealed: AbstractSet[str],
) -> set[str]:
    """The fields shown in full only because of a live reveal."""
    return {
        name
        for name, visibility in shown.items()
        if visibility == Visibility.FULL
        and name in revealed
        and _unrevealed(matrix, actor.role, PII_BY_NAME[name].category, restricted)
        != Visibility.FULL
    }


def _shape(
    *,
    actor: User,
    customer: Customer,
    matrix: dict,
    revealed: AbstractSet[str],
    capped: bool,
    restricted: bool = False,
    only: AbstractSet[str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    data = customer_plain(customer)
    shown: dict[str, str] = {}
    for spec in PII_FIELDS:
        if only is not None and spec.name not in only:
            continue  # not read, not decrypted, not logged
        visibility = _unrevealed(matrix, actor.role, spec.category, restricted)
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
            # A mask that keeps the value whole (a city: a masked address shows
            # its city) shows it in full: `shown`, and the access log, say so.
            if value is not None and data[spec.name] == show_full(value):
                visibility = Visibility.FULL
        if value is not None:
            shown[spec.name] = visibility
    data["shown"] = shown
    return data, shown


def _access_reasons(
    *, actor: User, customers: list[Customer | AssignedCustomer]
) -> tuple[dict[Any, tuple[Any, str]], dict[Any, LiveReveals]]:
    """Each customer's open interaction (id, kind) and live reveals by the actor.
    Rows of the agents' statement (`AssignedCustomer`) carry both; the others take
    `access_context` (two queries, whatever their number)."""
    interactions: dict[Any, tuple[Any, str]] = {}
    reveals: dict[Any, LiveReveals] = {}
    plain = []
    for found in customers:
        if not isinstance(found, AssignedCustomer):
            plain.append(found.pk)
            continue
        interactions[found.pk] = (
            found.open_interaction_id,
            found.open_interaction_kind,
        )
        if found.live_reveals:
            reveals[found.pk] = found.live_reveals
    if plain:
        context = access_context(actor=actor, customer_ids=plain)
        for pk, interaction in context.interactions.items():
            interactions[pk] = (interaction.pk, interaction.kind)
        for pk, found_reveals in context.reveals.items():
            live = live_reveals_of(found_reveals)
            if live is not None:
                reveals[pk] = live
    return interactions, reveals


def customers_read(
    *,
    actor: User,
    customers: Iterable[Customer | AssignedCustomer],
    capped: bool = False,
    matrix: dict | None = None,
    only: AbstractSet[str] | None = None,
) -> list[dict[str, Any]]:
    """Each customer as the actor may see them, and one access-log row per customer,
    written in one insert. `capped`: search results outside the actor's assignments,
    shown masked at most. `matrix`: the policy, if the caller has read it already.
    `only`: these fields and no others (a list page's columns): the rest are neither
    decrypted nor logged as shown.
    A restricted customer's fields are masked where the policy would show them in
    full (a live reveal still shows its fields), and their row says `restricted`:
    the purposes their use is limited to, oldest first.
    With a live reveal the row says `reveal_expires_at` (when the last ends) and
    `reveal_ends`: each field shown in full only because of a reveal, and when the
    last reveal that opened it ends. The access-log row names the newest reveal that
    opened a field shown, none if the read shows none (a list that shows only
    fields the policy shows)."""
    customers = list(customers)
    data_keys_preload(customer_of(c).data_key_id for c in customers)
    matrix = policy_matrix() if matrix is None else matrix
    interactions, reveals = _access_reasons(actor=actor, customers=customers)
    restrictions = customer_restrictions_active_for(
        customer_ids=[customer_of(c).pk for c in customers]
    )
    results, entries = [], []
    for found in customers:
        customer = customer_of(found)
        interaction_id, kind = interactions.get(customer.pk, (None, None))
        live = None if capped else reveals.get(customer.pk)
        data, shown = _shape(
            actor=actor,
            customer=customer,
            matrix=matrix,
            revealed=live.fields if live else frozenset(),
            capped=capped,
            restricted=customer.pk in restrictions,
            only=only,
        )
        if customer.pk in restrictions:
            data["restricted"] = [
                {"purpose": r.purpose, "since": r.placed_at, "id": r.pk}
                for r in restrictions[customer.pk]
            ]
        opened: set[str] = set()
        if live:
            opened = _opened(
                actor=actor,
                matrix=matrix,
                shown=shown,
                restricted=customer.pk in restrictions,
                revealed=live.fields,
            )
            ends = live.ends()
            data["reveal_expires_at"] = live.expires_at
            data["reveal_ends"] = {name: ends[name] for name in opened}
        results.append(data)
        if shown:
            entries.append(
                AccessLogRow(
                    customer.pk,
                    shown,
                    access_log_purpose(actor=actor, kind=kind),
                    interaction_id,
                    live.latest_id_of(opened) if live else None,
                )
            )
    access_log_write(actor=actor, entries=entries)
    return results


@dataclass(frozen=True)
class DeskCustomers:
    """What the desk shows of its customers: the fields it shows for the role, and
    each customer read, by id (one missing from it shows by a short id only)."""

    fields: frozenset[str] = frozenset()
    by_id: dict[UUID, dict[str, Any]] = field(default_factory=dict)

    @property
    def shows_names(self) -> bool:
        return any(
            PII_BY_NAME[name].category == DataCategory.IDENTITY for name in self.fields
        )

    @property
    def shows_addresses(self) -> bool:
        return any(
            PII_BY_NAME[name].category == DataCategory.ADDRESS for name in self.fields
        )


def customers_read_for_desk(
    *, actor: User, interactions: Sequence[Interaction]
) -> DeskCustomers:
    """The customers of the desk's interactions as the role may see them there
    (`desk_fields`), each read logged as a list page's: agents' through their
    assignments (the grant and an open case must both stand; only the customers
    listed are fetched and their keys unwrapped), governance roles' any."""
    if not interactions:
        return DeskCustomers()
    matrix = policy_matrix()
    only = desk_fields(matrix=matrix, role=actor.role)
    if not only:
        return DeskCustomers()
    listed = {interaction.customer_id for interaction in interactions}
    customers: list[Customer | AssignedCustomer]
    if actor.role in AGENT_ROLES:
        customers = list(customers_assigned_list(actor, customer_ids=listed))
    elif actor.role in GOVERNANCE_ROLES:
        customers = list({i.customer_id: i.customer for i in interactions}.values())
    else:
        return DeskCustomers(fields=only)
    views = customers_read(actor=actor, customers=customers, matrix=matrix, only=only)
    return DeskCustomers(fields=only, by_id={view["id"]: view for view in views})
