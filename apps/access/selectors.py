"""Reads for need-to-know access: the policy matrix, who may see whom, the logs."""

import json
from collections import defaultdict
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict, cast
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
from apps.accounts.models import GOVERNANCE_ROLES, Role, User
from apps.accounts.selectors import user_ids_active_with_roles
from apps.core.db import model_from_row, server_cursor
from apps.core.errors import NotFound
from apps.core.partitions import Partition, partitions_list
from apps.crypto.keys import data_key_sql, data_keys_remember
from apps.customers.models import Customer
from apps.customers.registry import PII_FIELDS, DataCategory
from apps.customers.selectors import customer_list, customer_queryset, customer_sql

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

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


# What the desk lists of each customer, beside the case: who they are and, for a
# delivery, where to. Each only where the role sees it in full (a masked name or
# address tells a desk nothing); hidden and masked ones are neither decrypted nor
# logged.
DESK_CATEGORIES = (DataCategory.IDENTITY, DataCategory.ADDRESS)


def desk_fields(*, matrix: dict[tuple[str, str], Cell], role: str) -> frozenset[str]:
    """The fields the desk shows for `role`: those of `DESK_CATEGORIES` the policy
    shows in full."""
    return frozenset(
        spec.name
        for spec in PII_FIELDS
        if spec.category in DESK_CATEGORIES
        and policy_cell(matrix, role, spec.category).visibility == Visibility.FULL
    )


def _open_interactions(*, at: datetime | None = None) -> QuerySet[Interaction]:
    return Interaction.objects.filter(
        closed_at__isnull=True, expires_at__gt=at or timezone.now()
    )


class OpenInteraction(TypedDict):
    """What `customers_assigned_to` annotates each customer with."""

    open_interaction_id: UUID
    open_interaction_kind: str
    open_interaction_expires_at: datetime
    open_interaction_alias: str


def customers_assigned_to(
    actor: User,
) -> "QuerySet[WithAnnotations[Customer, OpenInteraction]]":
    """Customers the agent holds an object permission on (django-guardian's direct
    foreign-key table, joined by key) and an open interaction with: both must hold, so
    a grant that outlived its interaction by a beat-task interval shows nothing. Each
    row is annotated with its open interaction (the oldest if several):
    `open_interaction_id`, `_kind`, `_expires_at` and `_alias`."""
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
            open_interaction_expires_at=Subquery(oldest_open.values("expires_at")[:1]),
            open_interaction_alias=Subquery(oldest_open.values("contact_alias")[:1]),
        )
        .filter(open_interaction_id__isnull=False)
    )


@dataclass(frozen=True)
class LiveReveal:
    """One granted, unexpired reveal: its id, the fields it opens, its end."""

    id: int
    fields: frozenset[str]
    expires_at: datetime


@dataclass(frozen=True)
class LiveReveals:
    """An actor's granted, unexpired reveals of one customer, oldest first (never
    empty). Each field shows until the last of the reveals that opened it ends, not
    until the last of them all."""

    reveals: tuple[LiveReveal, ...]

    @property
    def fields(self) -> frozenset[str]:
        """The fields they open."""
        return frozenset().union(*(reveal.fields for reveal in self.reveals))

    @property
    def expires_at(self) -> datetime:
        """When the last of them ends."""
        return max(reveal.expires_at for reveal in self.reveals)

    @property
    def latest_id(self) -> int:
        """The newest."""
        return self.reveals[-1].id

    def ends(self) -> dict[str, datetime]:
        """Each field they open, and when the last reveal that opened it ends."""
        ends: dict[str, datetime] = {}
        for reveal in self.reveals:
            for name in reveal.fields:
                ends[name] = max(ends.get(name, reveal.expires_at), reveal.expires_at)
        return ends

    def latest_id_of(self, names: Collection[str]) -> int | None:
        """The newest reveal that opened one of `names` (what a read showing them
        names in the access log), None if none did."""
        for reveal in reversed(self.reveals):
            if not reveal.fields.isdisjoint(names):
                return reveal.id
        return None


@dataclass(frozen=True)
class AssignedCustomer:
    """A customer on an agent's list, read with what reading them needs: the agent's
    oldest open interaction with them and the agent's live reveals of them (None:
    none). `customers_read`, `interaction_current_for` and `reveal_open` take it in
    place of the customer and look none of it up again."""

    customer: Customer
    open_interaction_id: UUID
    open_interaction_kind: str
    open_interaction_expires_at: datetime
    open_interaction_alias: str
    live_reveals: LiveReveals | None

    @property
    def created_at(self) -> datetime:
        """The customer's, as on a customer: the list's order (newest first)."""
        return self.customer.created_at

    @property
    def pk(self) -> UUID:
        """The customer's id, as on a customer: pages and logs key rows by it."""
        return self.customer.pk


def customer_of(found: Customer | AssignedCustomer) -> Customer:
    """The customer itself, for what takes the model (services of other apps, pages):
    a staff selector's answer may be an `AssignedCustomer`."""
    return found.customer if isinstance(found, AssignedCustomer) else found


# The agent's list in one statement: the open interactions that have a standing
# guardian grant (the oldest per customer), their customers with their data keys, and
# each customer's live reveals by the agent, each under an interaction that is still
# open (a reveal ends with its case). One round trip and no ORM compilation: the
# list page, the customer page and the API serve it on every request. The customer's
# columns are named, not `c.*`: a prepared statement's result must keep its shape
# while a migration adds a column under running processes. The customer's and the
# data key's tables and columns are fragments their apps offer (`customer_sql`,
# `data_key_sql`): their names stay those apps' to change, and one statement still
# does the work. Composed once, at import: the text is constant, so a connection
# prepares it once.
_CUSTOMER = customer_sql("c")
_DATA_KEY = data_key_sql("k")
_ASSIGNED_LIST_SQL = f"""
SELECT {_CUSTOMER.columns},
       o.id AS open_interaction_id, o.kind AS open_interaction_kind,
       o.expires_at AS open_interaction_expires_at,
       o.contact_alias AS open_interaction_alias,
       r.ids AS reveal_ids, r.names AS reveal_fields, r.ends AS reveal_ends,
       {_DATA_KEY.columns}
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
JOIN {_CUSTOMER.source} ON {_CUSTOMER.id} = o.customer_id
JOIN {_DATA_KEY.source} ON {_DATA_KEY.id} = {_CUSTOMER.data_key_id}
LEFT JOIN LATERAL (
    SELECT array_agg(v.id ORDER BY v.created_at, v.id) AS ids,
           jsonb_agg(v.fields ORDER BY v.created_at, v.id) AS names,
           array_agg(v.expires_at ORDER BY v.created_at, v.id) AS ends
    FROM access_reveal v
    JOIN access_interaction vi
      ON vi.id = v.interaction_id AND vi.closed_at IS NULL AND vi.expires_at > %(now)s
    WHERE v.staff_id = %(staff)s AND v.customer_id = {_CUSTOMER.id}
      AND v.status = %(granted)s AND v.expires_at > %(now)s
) r ON true
ORDER BY {_CUSTOMER.newest_first}
"""  # noqa: S608  # nosec B608 - the names come from the models, none from input
# A row of it: the customer's columns in field order, then the others in this order
# (the data key's last, as `data_keys_remember` takes them after its id).
_AFTER_CUSTOMER = len(Customer._meta.concrete_fields)


def customers_assigned_list(
    actor: User,
    *,
    only: QuerySet[Any] | None = None,
    customer_ids: Collection[UUID] | None = None,
) -> list[AssignedCustomer]:
    """The same customers as `customers_assigned_to`, newest first, each with its
    oldest open interaction and its live reveals by the actor, so reading them needs
    no `access_context`; their data keys are unwrapped into the key scope. `only`
    (a search's matches) and `customer_ids` (a page's customers) narrow them. On
    PostgreSQL one query."""
    only_ids = None if only is None else list(only.values_list("pk", flat=True))
    if customer_ids is not None:
        wanted = set(customer_ids)
        only_ids = (
            list(wanted)
            if only_ids is None
            else [pk for pk in only_ids if pk in wanted]
        )
    return _customers_assigned(actor, only_ids=only_ids)


def _customers_assigned(
    actor: User, *, only_ids: list[Any] | None, prepare: bool = True
) -> list[AssignedCustomer]:
    """`customers_assigned_list`, narrowed to `only_ids` if given. `prepare=False`
    only for bench/access.py, which weighs what preparing saves."""
    if connection.vendor != "postgresql":
        return _customers_assigned_orm(actor, only_ids=only_ids)
    # Prepared: a persistent connection plans it once. It pays: bench/access.py's row
    # "the list query prepared vs not" (`make bench`) times both in the same rounds;
    # at BENCH_CUSTOMERS=10000, 50 rows: 5.64 ms prepared, 6.04 ms not (0.93x; another
    # benchmark was running beside it). If that row says NO (3% or less), drop it.
    with server_cursor() as cursor:
        cursor.execute(
            _ASSIGNED_LIST_SQL,
            {
                "staff": actor.pk,
                "permission": view_customer_permission_id(),
                "now": timezone.now(),
                "only": only_ids,
                "granted": RevealStatus.GRANTED,
            },
            prepare=prepare,
        )
        rows = cursor.fetchall()
    found, keys = [], []
    for row in rows:
        customer = model_from_row(Customer, row[:_AFTER_CUSTOMER])
        (
            interaction_id,
            kind,
            expires_at,
            alias,
            reveal_ids,
            reveal_fields,
            reveal_ends,
            *data_key,
        ) = row[_AFTER_CUSTOMER:]
        keys.append((customer.data_key_id, *data_key))
        found.append(
            AssignedCustomer(
                customer=customer,
                open_interaction_id=interaction_id,
                open_interaction_kind=kind,
                open_interaction_expires_at=expires_at,
                open_interaction_alias=alias,
                live_reveals=_live_reveals(reveal_ids, reveal_fields, reveal_ends),
            )
        )
    data_keys_remember(keys)
    return found


def _customers_assigned_orm(
    actor: User, *, only_ids: list[Any] | None
) -> list[AssignedCustomer]:
    """`_customers_assigned` where DISTINCT ON and LATERAL are missing (not
    PostgreSQL): the annotated queryset, then the live reveals (`access_context`)."""
    rows = customers_assigned_to(actor)
    if only_ids is not None:
        rows = rows.filter(pk__in=only_ids)
    customers = list(rows.order_by("-created_at", "pk"))
    context = access_context(
        actor=actor,
        customer_ids=[c.pk for c in customers],
        include_interactions=False,
    )
    return [
        AssignedCustomer(
            customer=customer,
            open_interaction_id=customer.open_interaction_id,
            open_interaction_kind=customer.open_interaction_kind,
            open_interaction_expires_at=customer.open_interaction_expires_at,
            open_interaction_alias=customer.open_interaction_alias,
            live_reveals=live_reveals_of(context.reveals.get(customer.pk, [])),
        )
        for customer in customers
    ]


def _live_reveals(
    ids: list[int] | None, fields: str | list[list[str]] | None, ends: list[datetime]
) -> LiveReveals | None:
    """`LiveReveals` from the list statement's three arrays (None: no live reveal).
    The fields are one JSON array of each reveal's (text, as Django loads `jsonb`)."""
    if not ids:
        return None
    per_reveal = json.loads(fields) if isinstance(fields, str) else fields or []
    return LiveReveals(
        tuple(
            LiveReveal(pk, frozenset(names), end)
            for pk, names, end in zip(ids, per_reveal, ends, strict=True)
        )
    )


def live_reveals_of(reveals: list[Reveal]) -> LiveReveals | None:
    """`LiveReveals` from one customer's reveals in `access_context`, oldest first."""
    if not reveals:
        return None
    return LiveReveals(
        tuple(
            # Live reveals are granted ones: each has an end.
            LiveReveal(
                reveal.pk, frozenset(reveal.fields), cast(datetime, reveal.expires_at)
            )
            for reveal in reveals
        )
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


def customer_get_for_staff(
    *, actor: User, customer_id: UUID | str
) -> Customer | AssignedCustomer:
    """A customer the actor may see at all. Raises NotFound otherwise (never 403).

    An agent's customer comes from the list's statement, narrowed to this id, as an
    `AssignedCustomer`: the grant, the open interaction, the live reveals and the data
    key in one round trip, so reading it (`customers_read`) needs no more lookups.
    What takes the model gets it from `customer_of`."""
    if actor.role in GOVERNANCE_ROLES:
        try:
            return customer_queryset().get(pk=customer_id)
        except (Customer.DoesNotExist, ValueError, TypeError):
            raise NotFound("No such customer.") from None
    if actor.role not in AGENT_ROLES:
        raise NotFound("No such customer.")
    try:
        wanted = customer_id if isinstance(customer_id, UUID) else UUID(customer_id)
    except (ValueError, TypeError, AttributeError):
        raise NotFound("No such customer.") from None
    found = _customers_assigned(actor, only_ids=[wanted])
    if not found:
        raise NotFound("No such customer.")
    return found[0]


def customer_exists(*, customer_id: UUID | str) -> Customer:
    """Any customer by id, for opening an interaction on it. Raises NotFound."""
    try:
        return customer_queryset().get(pk=customer_id)
    except (Customer.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such customer.") from None


@dataclass
class StaffSearch:
    customers: QuerySet[Customer] | list[AssignedCustomer]
    capped: bool  # results beyond the actor's assignments: masked at most


def customer_search_for_staff(
    *, actor: User, email: str = "", phone: str = ""
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
    return StaffSearch(customer_queryset().none(), capped=True)


@dataclass
class AccessContext:
    """Per-customer reasons an actor has right now: open interaction, active reveals."""

    interactions: dict[UUID, Interaction] = field(default_factory=dict)
    reveals: dict[UUID, list[Reveal]] = field(default_factory=lambda: defaultdict(list))


def access_context(
    *,
    actor: User,
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


def reveals_live_for(*, actor: User, at: datetime | None = None) -> QuerySet[Reveal]:
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


def interaction_current_for(
    *, actor: User, customer: Customer | AssignedCustomer
) -> Interaction | None:
    """The actor's oldest open interaction with `customer`, if any. An
    `AssignedCustomer` carries it, so it costs no query."""
    if not isinstance(customer, AssignedCustomer):
        return access_context(
            actor=actor, customer_ids=[customer.pk], include_reveals=False
        ).interactions.get(customer.pk)
    known = {
        "id": customer.open_interaction_id,
        "kind": customer.open_interaction_kind,
        "staff_id": actor.pk,
        "customer_id": customer.pk,
        "expires_at": customer.open_interaction_expires_at,
        "closed_at": None,
        "contact_alias": customer.open_interaction_alias,
    }
    # The columns the statement read; any other is deferred (loads if ever read).
    names = [f.attname for f in Interaction._meta.concrete_fields if f.attname in known]
    return Interaction.from_db(connection.alias, names, [known[name] for name in names])


def interaction_list_for(
    *, actor: User, include_closed: bool = False
) -> QuerySet[Interaction]:
    """The actor's own interactions, open ones first by default."""
    interactions = Interaction.objects.filter(staff=actor).select_related("customer")
    if not include_closed:
        interactions = interactions.filter(
            closed_at__isnull=True, expires_at__gt=timezone.now()
        )
    return interactions.order_by("-opened_at")


def interaction_get_for(*, actor: User, interaction_id: UUID | str) -> Interaction:
    """One interaction the actor owns (privacy admins: any). Raises NotFound."""
    interactions = Interaction.objects.select_related("customer", "staff")
    if actor.role != Role.PRIVACY_ADMIN:
        interactions = interactions.filter(staff=actor)
    try:
        return interactions.get(pk=interaction_id)
    except (Interaction.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such interaction.") from None


def reveal_list_ended_for(
    *, actor: User, customer_id: UUID, since: datetime, limit: int = 10
) -> list[Reveal]:
    """The actor's reveals of the customer that ended (their time ran out, or they
    were suspended) after `since` and before now, the latest end first: what the
    customer page says has expired."""
    return list(
        Reveal.objects.filter(
            staff=actor,
            customer_id=customer_id,
            status__in=[RevealStatus.GRANTED, RevealStatus.SUSPENDED],
            expires_at__gt=since,
            expires_at__lte=timezone.now(),
        ).order_by("-expires_at", "-pk")[:limit]
    )


def reveal_count_since(*, actor: User, since: datetime) -> int:
    """Reveals granted since then, including those suspended since: suspending them
    gives no fresh allowance."""
    return Reveal.objects.filter(
        staff=actor,
        status__in=[RevealStatus.GRANTED, RevealStatus.SUSPENDED],
        created_at__gte=since,
    ).count()


def access_log_for_customer(*, customer: Customer) -> QuerySet[AccessLogEntry]:
    """The customer's access log for staff, newest first, with who read it."""
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


def access_log_list_for_subject(
    *, customer: Customer
) -> Iterator[tuple[datetime, str, str, dict[str, str]]]:
    """The customer's access log as the customer may see it, newest first: when, the
    staff member's role, the purpose and the fields shown, never who. Streams: a
    customer may have 10,000s of rows."""
    return (
        AccessLogEntry.objects.filter(customer=customer)
        .order_by("-created_at", "-pk")
        .values_list("created_at", "staff_role", "purpose", "fields")
        .iterator(chunk_size=2000)
    )


def access_log_reads_for_subject(
    *, customer: Customer
) -> Iterator[tuple[datetime, int, str, str]]:
    """The customer's access log newest first, for telling one staff member's visit
    from another's: when, the staff member's id (to group by, never to show: the
    customer is told the role, not who), their role and the purpose. Streams."""
    return (
        AccessLogEntry.objects.filter(customer=customer)
        .order_by("-created_at", "-pk")
        .values_list("created_at", "staff_id", "staff_role", "purpose")
        .iterator(chunk_size=2000)
    )


def access_log_list(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    staff_id: int | None = None,
    staff_ids: Collection[int] | None = None,
    purpose: str | None = None,
) -> QuerySet[AccessLogEntry]:
    """Access-log rows written in (`since`, `until`], by this staff member or these,
    for this purpose (each: any, if not given), for set-based work over the log:
    monitoring's rules aggregate it, retention disposes of it."""
    entries = AccessLogEntry.objects.all()
    if since is not None:
        entries = entries.filter(created_at__gt=since)
    if until is not None:
        entries = entries.filter(created_at__lte=until)
    if staff_id is not None:
        entries = entries.filter(staff_id=staff_id)
    if staff_ids is not None:
        entries = entries.filter(staff_id__in=staff_ids)
    if purpose is not None:
        entries = entries.filter(purpose=purpose)
    return entries


def access_log_written_filter(*, before: datetime) -> Q:
    """The condition on access-log rows written at or before `before`: retention's
    clock for the log (`access_log_list` rows)."""
    return Q(created_at__lte=before)


def access_log_months(*, ending_by: datetime | None = None) -> list[Partition]:
    """The access log's monthly partitions, oldest first (not its DEFAULT one); only
    those whose every row was written before `ending_by`, if given. Empty on SQLite,
    where the log is one plain table."""
    months = [
        p for p in partitions_list(AccessLogEntry._meta.db_table) if not p.is_default
    ]
    if ending_by is not None:
        months = [p for p in months if p.end is not None and p.end <= ending_by]
    return months


def access_log_in_month(*, month: Partition) -> QuerySet[AccessLogEntry]:
    """The access-log rows of one monthly partition (`access_log_months`)."""
    return AccessLogEntry.objects.filter(
        created_at__gte=month.start, created_at__lt=month.end
    )


def reveal_list_granted(
    *,
    since: datetime,
    until: datetime,
    staff_id: int | None = None,
    roles: Collection[str] | None = None,
) -> QuerySet[Reveal]:
    """Reveals granted in (`since`, `until`], including those suspended since (a
    suspension gives no fresh allowance), by this staff member (any, if not given):
    what monitoring counts. `roles`: only those of active staff members in these roles
    (staff who left take their history with them)."""
    reveals = Reveal.objects.filter(
        status__in=[RevealStatus.GRANTED, RevealStatus.SUSPENDED],
        created_at__gt=since,
        created_at__lte=until,
    )
    if staff_id is not None:
        reveals = reveals.filter(staff_id=staff_id)
    if roles is not None:
        reveals = reveals.filter(staff_id__in=user_ids_active_with_roles(roles=roles))
    return reveals


def interaction_list_closed() -> QuerySet[Interaction]:
    """Every closed interaction, for retention (a contact session's record)."""
    return Interaction.objects.filter(closed_at__isnull=False)


def interaction_closed_filter(*, before: datetime) -> Q:
    """The condition on interactions closed at or before `before`: retention's clock
    for them (`interaction_list_closed` rows)."""
    return Q(closed_at__lte=before)


def interaction_list_for_customer(*, customer: Customer) -> QuerySet[Interaction]:
    """The customer's interactions, newest first (their export)."""
    return Interaction.objects.filter(customer=customer).order_by("-opened_at")
