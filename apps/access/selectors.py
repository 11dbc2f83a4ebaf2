"""Reads for need-to-know access: the policy matrix, who may see whom, the logs."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from apps.access.defaults import DEFAULT_POLICY
from apps.access.models import (
    AccessLogEntry,
    CustomerUserObjectPermission,
    FieldPolicy,
    Interaction,
    RelayEvent,
    Reveal,
    RevealStatus,
    Visibility,
)
from apps.accounts.models import GOVERNANCE_ROLES, Role
from apps.core.db import model_columns_sql, model_from_row, server_cursor
from apps.core.errors import NotFound
from apps.crypto.keys import data_keys_remember
from apps.customers.models import Customer
from apps.customers.selectors import customer_list, customer_queryset

VIEW_CUSTOMER = "customers.view_customer"
AGENT_ROLES = frozenset({Role.SUPPORT_AGENT, Role.DELIVERY_AGENT})


@dataclass(frozen=True)
class Cell:
    visibility: str
    revealable: bool


def policy_matrix() -> dict[tuple[str, str], Cell]:
    """Every (role, category) cell; a cell missing from the table is hidden."""
    cells = {
        (role, category): Cell(visibility, revealable)
        for role, per_role in DEFAULT_POLICY.items()
        for category, (visibility, revealable) in per_role.items()
    }
    for row in FieldPolicy.objects.all():
        cells[(row.role, row.category)] = Cell(row.visibility, row.revealable)
    return cells


def policy_cell(matrix: dict[tuple[str, str], Cell], role: str, category: str) -> Cell:
    return matrix.get((role, category), Cell(Visibility.HIDDEN, False))


def _open_interactions(*, at: datetime | None = None) -> QuerySet[Interaction]:
    return Interaction.objects.filter(
        closed_at__isnull=True, expires_at__gt=at or timezone.now()
    )


def customers_assigned_to(actor) -> QuerySet[Customer]:
    """Customers the agent holds an object permission on (django-guardian's direct
    foreign-key table, joined by key) and an open interaction with: both must hold, so
    a grant that outlived its interaction by a beat-task interval shows nothing. Each
    row carries its open interaction (`open_interaction_id`, the oldest if several)."""
    granted = CustomerUserObjectPermission.objects.filter(
        user=actor, permission_id=view_customer_permission_id()
    ).values("content_object_id")
    oldest_open = (
        _open_interactions()
        .filter(staff=actor, customer=OuterRef("pk"))
        .order_by("opened_at")
    )
    return (
        customer_queryset()
        .filter(pk__in=granted)
        .annotate(
            open_interaction_id=Subquery(oldest_open.values("id")[:1]),
            open_interaction_kind=Subquery(oldest_open.values("kind")[:1]),
        )
        .filter(open_interaction_id__isnull=False)
    )


@dataclass(frozen=True)
class LiveReveals:
    """An actor's granted, unexpired reveals of one customer, summed up: the fields
    they open, when the last of them ends, and the newest (the access log names it)."""

    fields: frozenset[str]
    expires_at: datetime
    latest_id: int


# The agent's list in one statement: the open interactions that have a standing
# guardian grant (the oldest per customer), their customers with their data keys, and
# each customer's live reveals by the agent, each under an interaction that is still
# open (a reveal ends with its case). One round trip and no ORM compilation: the
# list page, the customer page and the API serve it on every request. The customer's
# columns are named, not `c.*`: a prepared statement's result must keep its shape
# while a migration adds a column under running processes.
_CUSTOMER_COLUMNS = model_columns_sql(Customer, "c")
_ASSIGNED_LIST_SQL = f"""
SELECT {_CUSTOMER_COLUMNS},
       o.id AS open_interaction_id, o.kind AS open_interaction_kind,
       o.expires_at AS open_interaction_expires_at,
       o.contact_alias AS open_interaction_alias,
       r.until AS reveal_until, r.latest AS reveal_latest_id, r.names AS reveal_fields,
       k.wrapped_key AS data_key_wrapped, k.kek_version AS data_key_version,
       k.destroyed_at AS data_key_destroyed_at
FROM (
    SELECT DISTINCT ON (i.customer_id)
           i.customer_id, i.id, i.kind, i.expires_at, i.contact_alias
    FROM access_interaction i
    JOIN access_customeruserobjectpermission g
      ON g.content_object_id = i.customer_id AND g.user_id = %(staff)s
     AND g.permission_id = %(permission)s
    WHERE i.staff_id = %(staff)s AND i.closed_at IS NULL AND i.expires_at > %(now)s
      AND (%(only)s::uuid[] IS NULL OR i.customer_id = ANY(%(only)s::uuid[]))
    ORDER BY i.customer_id, i.opened_at
) o
JOIN customers_customer c ON c.id = o.customer_id
JOIN crypto_datakey k ON k.id = c.data_key_id
LEFT JOIN LATERAL (
    SELECT max(v.expires_at) AS until,
           (array_agg(v.id ORDER BY v.created_at DESC))[1] AS latest,
           array_agg(DISTINCT f.name) AS names
    FROM access_reveal v
    JOIN access_interaction vi
      ON vi.id = v.interaction_id AND vi.closed_at IS NULL AND vi.expires_at > %(now)s
    CROSS JOIN LATERAL jsonb_array_elements_text(v.fields) f(name)
    WHERE v.staff_id = %(staff)s AND v.customer_id = c.id
      AND v.status = %(granted)s AND v.expires_at > %(now)s
) r ON true
ORDER BY c.created_at DESC, c.id
"""  # noqa: S608  # nosec B608 - the column names come from the model, none from input


def customers_assigned_list(actor, *, only: QuerySet | None = None) -> list[Customer]:
    """The same customers as `customers_assigned_to`, newest first, in one query: the
    fast path for list pages. `only` narrows them (a search's matches). Each carries
    its oldest open interaction (`open_interaction_id`, `open_interaction_kind`) and
    its live reveals by the actor (`live_reveals`, None without), so reading them
    needs no `access_context`; their data keys are unwrapped into the key scope."""
    if connection.vendor != "postgresql":
        # DISTINCT ON and LATERAL are PostgreSQL's; elsewhere the queryset (the rows
        # carry their interaction, and reads look up the reveals).
        rows = customers_assigned_to(actor)
        rows = rows if only is None else rows.filter(pk__in=only)
        return list(rows.order_by("-created_at", "pk"))
    only_ids = None if only is None else list(only.values_list("pk", flat=True))
    return _customers_assigned(actor, only_ids=only_ids)


def _customers_assigned(actor, *, only_ids: list[Any] | None) -> list[Customer]:
    """`customers_assigned_list` on PostgreSQL, narrowed to `only_ids` if given."""
    customers = _customers_prepared(
        _ASSIGNED_LIST_SQL,
        {
            "staff": actor.pk,
            "permission": view_customer_permission_id(),
            "now": timezone.now(),
            "only": only_ids,
            "granted": RevealStatus.GRANTED,
        },
    )
    data_keys_remember(
        (
            c.data_key_id,
            c.data_key_wrapped,
            c.data_key_version,
            c.data_key_destroyed_at,
        )
        for c in customers
    )
    for customer in customers:
        customer.live_reveals = (
            LiveReveals(
                frozenset(customer.reveal_fields),
                customer.reveal_until,
                customer.reveal_latest_id,
            )
            if customer.reveal_until
            else None
        )
    return customers


_layouts: dict[str, tuple[list[int], list[tuple[int, str]]]] = {}


def _customers_prepared(sql: str, params: dict[str, Any]) -> list[Customer]:
    """Customers from `sql` (their columns and extra ones, set as attributes), run as a
    prepared statement on Django's connection: a persistent connection plans it once
    (planning was half of its time on the server). Values pass through each field's
    converters, as a queryset's do."""
    with server_cursor() as cursor:
        cursor.execute(sql, params, prepare=True)
        # The statement names its columns, so where each one is depends on its text
        # only: read the description (costly) once per statement and process.
        layout = _layouts.get(sql)
        if layout is None:
            names = [column.name for column in cursor.description]
            columns = {f.column for f in Customer._meta.concrete_fields}
            layout = _layouts[sql] = (
                [names.index(f.column) for f in Customer._meta.concrete_fields],
                [(i, name) for i, name in enumerate(names) if name not in columns],
            )
        rows = cursor.fetchall()
    positions, extra = layout
    customers = []
    for row in rows:
        customer = model_from_row(Customer, [row[p] for p in positions])
        for position, name in extra:
            setattr(customer, name, row[position])
        customers.append(customer)
    return customers


def live_reveals_of(reveals: list[Reveal]) -> LiveReveals | None:
    """`LiveReveals` from one customer's reveals in `access_context`, oldest first."""
    if not reveals:
        return None
    return LiveReveals(
        frozenset(name for reveal in reveals for name in reveal.fields),
        max(reveal.expires_at for reveal in reveals),
        reveals[-1].pk,
    )


_permission_ids: dict[int, int] = {}


def view_customer_permission_id() -> int:
    """The id of customers.view_customer, looked up once per content type row (the
    content type cache is cleared whenever those tables are rebuilt)."""
    content_type = ContentType.objects.get_for_model(Customer)
    if content_type.pk not in _permission_ids:
        _permission_ids[content_type.pk] = Permission.objects.get(
            content_type=content_type, codename="view_customer"
        ).pk
    return _permission_ids[content_type.pk]


def customer_get_for_staff(*, actor, customer_id: UUID | str) -> Customer:
    """A customer the actor may see at all. Raises NotFound otherwise (never 403).

    An agent's customer comes from the list's statement, narrowed to this id: the
    grant, the open interaction, the live reveals and the data key in one prepared
    round trip, so reading it (`customers_read`) needs no more lookups."""
    if actor.role in GOVERNANCE_ROLES:
        candidates = customer_queryset()
    elif actor.role in AGENT_ROLES and connection.vendor == "postgresql":
        try:
            wanted = customer_id if isinstance(customer_id, UUID) else UUID(customer_id)
        except (ValueError, TypeError, AttributeError):
            raise NotFound("No such customer.") from None
        found = _customers_assigned(actor, only_ids=[wanted])
        if not found:
            raise NotFound("No such customer.")
        return found[0]
    elif actor.role in AGENT_ROLES:
        candidates = customers_assigned_to(actor)
    else:
        raise NotFound("No such customer.")
    try:
        return candidates.get(pk=customer_id)
    except (Customer.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such customer.") from None


def customer_exists(*, customer_id: UUID | str) -> Customer:
    """Any customer by id, for opening an interaction on it. Raises NotFound."""
    try:
        return customer_queryset().get(pk=customer_id)
    except (Customer.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such customer.") from None


@dataclass
class StaffSearch:
    customers: QuerySet[Customer] | list[Customer]
    capped: bool  # results beyond the actor's assignments: masked at most


def customer_search_for_staff(
    *, actor, email: str = "", phone: str = ""
) -> StaffSearch:
    """What a staff member's customer list shows.

    Governance roles list everyone; support agents list their assigned customers, or
    search everyone by exact email or phone (at most the match, masked); delivery agents
    list their assigned customers only.
    """
    if actor.role in GOVERNANCE_ROLES:
        return StaffSearch(customer_list(email=email, phone=phone), capped=False)
    if actor.role == Role.SUPPORT_AGENT and (email or phone):
        return StaffSearch(customer_list(email=email, phone=phone)[:1], capped=True)
    if actor.role in AGENT_ROLES:
        matches = (
            customer_list(email=email, phone=phone).values("pk")
            if email or phone
            else None
        )
        # Bounded by the agent's open interactions: one query, no separate COUNT.
        return StaffSearch(customers_assigned_list(actor, only=matches), capped=False)
    return StaffSearch(Customer.objects.none(), capped=True)


@dataclass
class AccessContext:
    """Per-customer reasons an actor has right now: open interaction, active reveals."""

    interactions: dict[UUID, Interaction] = field(default_factory=dict)
    reveals: dict[UUID, list[Reveal]] = field(default_factory=lambda: defaultdict(list))


def access_context(
    *,
    actor,
    customer_ids: list[UUID],
    include_interactions: bool = True,
    include_reveals: bool = True,
) -> AccessContext:
    """At most two queries for any number of customers: no N+1 on list pages."""
    now = timezone.now()
    context = AccessContext()
    if not customer_ids:
        return context
    if include_interactions:
        for interaction in (
            _open_interactions(at=now)
            .filter(staff=actor, customer_id__in=customer_ids)
            .order_by("opened_at")
        ):
            context.interactions.setdefault(interaction.customer_id, interaction)
    if not include_reveals:
        return context
    # An agent has few live reveals (minutes long, hourly limit): fetch them all and
    # match in Python, rather than send the page's ids to the server.
    wanted = set(customer_ids)
    for reveal in reveals_live_for(actor=actor, at=now).order_by("created_at"):
        if reveal.customer_id in wanted:
            context.reveals[reveal.customer_id].append(reveal)
    return context


def reveals_live_for(*, actor, at: datetime | None = None) -> QuerySet[Reveal]:
    """The actor's granted, unexpired reveals whose interaction is still open: a
    reveal ends with its case, whoever or whatever ended it. Agents' reveals always
    have one; a governance role's (who sees customers without one) have none and
    last their window."""
    now = at or timezone.now()
    under_open_case = Q(
        interaction__closed_at__isnull=True, interaction__expires_at__gt=now
    )
    if actor.role not in AGENT_ROLES:
        under_open_case |= Q(interaction__isnull=True)
    return Reveal.objects.filter(
        under_open_case, staff=actor, status=RevealStatus.GRANTED, expires_at__gt=now
    )


def interaction_current_for(*, actor, customer: Customer) -> Interaction | None:
    """The actor's oldest open interaction with `customer`, if any. A row of the
    agents' statement (`customer_get_for_staff`) carries it, so it costs no query."""
    expires_at = getattr(customer, "open_interaction_expires_at", None)
    if expires_at is None:
        return access_context(
            actor=actor, customer_ids=[customer.pk], include_reveals=False
        ).interactions.get(customer.pk)
    known = {
        "id": customer.open_interaction_id,
        "kind": customer.open_interaction_kind,
        "staff_id": actor.pk,
        "customer_id": customer.pk,
        "expires_at": expires_at,
        "closed_at": None,
        "contact_alias": customer.open_interaction_alias,
    }
    # The columns the statement read; any other is deferred (loads if ever read).
    names = [f.attname for f in Interaction._meta.concrete_fields if f.attname in known]
    return Interaction.from_db(connection.alias, names, [known[name] for name in names])


def interaction_list_for(
    *, actor, include_closed: bool = False
) -> QuerySet[Interaction]:
    """The actor's own interactions, open ones first by default."""
    interactions = Interaction.objects.filter(staff=actor).select_related("customer")
    if not include_closed:
        interactions = interactions.filter(
            closed_at__isnull=True, expires_at__gt=timezone.now()
        )
    return interactions.order_by("-opened_at")


def interaction_get_for(*, actor, interaction_id: UUID | str) -> Interaction:
    """One interaction the actor owns (privacy admins: any). Raises NotFound."""
    interactions = Interaction.objects.select_related("customer", "staff")
    if actor.role != Role.PRIVACY_ADMIN:
        interactions = interactions.filter(staff=actor)
    try:
        return interactions.get(pk=interaction_id)
    except (Interaction.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such interaction.") from None


def reveal_count_since(*, actor, since: datetime) -> int:
    """Reveals granted since then, including those suspended since: suspending them
    gives no fresh allowance."""
    return Reveal.objects.filter(
        staff=actor,
        status__in=[RevealStatus.GRANTED, RevealStatus.SUSPENDED],
        created_at__gte=since,
    ).count()


def access_log_for_customer(*, customer: Customer) -> QuerySet[AccessLogEntry]:
    return (
        AccessLogEntry.objects.filter(customer=customer)
        .select_related("staff", "interaction")
        .order_by("-created_at", "-pk")
    )


def reveal_list_recent(*, limit: int = 100) -> QuerySet[Reveal]:
    return Reveal.objects.select_related("staff").order_by("-created_at")[:limit]


def relay_list_recent(*, limit: int = 100) -> QuerySet[RelayEvent]:
    return RelayEvent.objects.select_related("interaction__staff").order_by(
        "-created_at"
    )[:limit]


def interaction_by_alias(*, alias: str) -> Interaction:
    try:
        return Interaction.objects.select_related("customer__data_key", "staff").get(
            contact_alias=alias
        )
    except Interaction.DoesNotExist:
        raise NotFound("Unknown alias.") from None
