"""Reads of customer records, and their presentation with masking."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
)

from apps.core.db import model_column_sql, model_columns_sql, model_source_sql
from apps.core.errors import NotFound
from apps.core.etags import etag_of
from apps.core.i18n import language_choose, language_codes, language_of_country
from apps.crypto.fields import Digest, EncryptedTextField
from apps.crypto.keyring import key_ring
from apps.crypto.masterkeys import master_key_unreadable_on
from apps.customers.errors import CustomerError
from apps.customers.masking import mask_field
from apps.customers.models import Customer, CustomerStatus, Restriction
from apps.customers.registry import PII_FIELD_NAMES, DataCategory, fields_in_category
from apps.customers.validation import clean_email


def customer_queryset() -> QuerySet[Customer]:
    """Customers without their data keys: list pages unwrap a whole page's keys with
    one query (`apps.crypto.keys.data_keys_preload`) instead of joining."""
    return Customer.objects.all()


def customer_language(customer: Customer, *, requested: str | None = None) -> str:
    """The one language for anything Amanah sends or shows the customer outside a
    page they are browsing (emails, notices, pages an email links to): their saved
    choice; else `requested`, the language their own request came in (pass it only
    when the customer acts themselves, never for staff); else their country's
    (apps/core/i18n.COUNTRY_LANGUAGES); else English."""
    return language_choose(
        available=language_codes(),
        wanted=[customer.language, requested, language_of_country(customer.country)],
    )


def customer_get(*, customer_id: UUID | str) -> Customer:
    """One customer by public id, data key joined. Raises NotFound."""
    try:
        return Customer.objects.select_related("data_key").get(pk=customer_id)
    except (Customer.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such customer.") from None


def customer_list(*, email: str = "", phone: str = "") -> QuerySet[Customer]:
    """Customers newest first; `email` and `phone` are exact matches via blind index."""
    customers = customer_queryset().order_by("-created_at", "pk")
    if email:
        try:
            customers = customers.filter(email_index=clean_email(email))
        except CustomerError:
            return customers.none()  # an invalid address matches no one
    if phone:
        try:
            customers = customers.filter(phone_index=phone)
        except ValueError:
            return customers.none()
    return customers


def customer_masked(customer: Customer) -> dict[str, Any]:
    """The customer's plain columns and every PII field masked."""
    data = customer_plain(customer)
    for name in PII_FIELD_NAMES:
        data[name] = mask_field(name, getattr(customer, name))
    return data


def customer_plain(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.pk,
        "status": customer.status,
        "country": customer.country,
        "region": customer.region,
        "created_at": customer.created_at,
        "last_activity_at": customer.last_activity_at,
        "closed_at": customer.closed_at,
        "erased": customer.is_erased,
    }


def customers_changed_since(*, since: datetime | None) -> QuerySet[Customer]:
    """Every customer, closed and erased ones too, changed at or after `since` (all
    without it), by `updated_at`, which every write of the row moves: creation, a
    change, closing, erasure, disposal, a restriction placed or lifted (each annotated
    `restricted`: whether one is in force). Unordered: the caller orders and pages by
    ("updated_at", "pk") (index customers_updated_idx). A customer deleted by disposal
    is not in it: the row is gone."""
    # Ids, states and times only: no sealed column is read.
    customers = customer_queryset().only(
        "id", "status", "created_at", "closed_at", "erased_at", "updated_at"
    )
    customers = customers.annotate(
        restricted=Exists(
            Restriction.objects.filter(
                customer_id=OuterRef("pk"), lifted_at__isnull=True
            )
        )
    )
    if since is not None:
        customers = customers.filter(updated_at__gte=since)
    return customers


def customer_etag(customer: Customer) -> str:
    """The customer's version (an ETag), from the row as stored and never decrypted:
    every column, the sealed ones as their ciphertext (a change of any field seals
    it anew), so any write of the row (a change, a close, an erasure, a
    rectification) changes it. Raises ValueError for a value set but not saved,
    NotFound."""
    stored = customer.__dict__
    deferred = sorted(customer.get_deferred_fields())
    if deferred:
        # Read as stored: refresh_from_db would open the sealed ones.
        row = Customer.objects.filter(pk=customer.pk).values_list(*deferred).first()
        if row is None:
            raise NotFound("No such customer.")
        stored = {**stored, **dict(zip(deferred, row, strict=True))}
    parts: list[Any] = ["customer"]
    for field in Customer._meta.concrete_fields:
        value = stored[field.attname]
        if isinstance(field, EncryptedTextField) and not (
            value is None or isinstance(value, bytes | memoryview)
        ):
            # A plain value here was set on the instance and not saved: hashing it
            # would publish a digest of personal data, and no version holds it.
            raise ValueError(f"{field.name} was changed and not saved.")
        parts.append(value)
    return etag_of(*parts)


def customer_count() -> int:
    return Customer.objects.count()


def customer_find_by_email(*, email: str) -> Customer | None:
    """The (not erased) customer with this exact email, through the blind index."""
    try:
        address = clean_email(email)
    except CustomerError:
        return None
    return (
        Customer.objects.select_related("data_key", "user")
        .filter(email_index=address, erased_at__isnull=True)
        .first()
    )


def customer_email_key(*, email: str) -> str | None:
    """The blind index a customer with this email is found by (as
    `customer_find_by_email` looks), or None for an address that is not valid."""
    try:
        address = clean_email(email)
        return Customer._meta.get_field("email_index").get_prep_value(address)
    except (CustomerError, ValueError):
        return None


def customers_by_email_keys(*, keys: Iterable[str]) -> dict[str, Customer]:
    """The (not erased) customers whose emails have these blind indexes
    (`customer_email_key`), by that index, data keys joined: one query for a batch."""
    wanted = [Digest(key) for key in set(keys)]
    if not wanted:
        return {}
    rows = Customer.objects.select_related("data_key").filter(
        email_index__in=wanted, erased_at__isnull=True
    )
    return {str(customer.email_index): customer for customer in rows}


# Disposal (apps.retention): which customers a policy covers, and when their clocks
# started, as querysets and conditions its set-based queries build on.

CLOCK_FIELDS = {
    "created": "created_at",
    "last_activity": "last_activity_at",
    "closed": "closed_at",
}


def customers_not_erased() -> QuerySet[Customer]:
    return Customer.objects.filter(erased_at__isnull=True)


def customers_closed() -> QuerySet[Customer]:
    """Closed accounts not erased yet, with the time they closed."""
    return customers_not_erased().filter(
        status=CustomerStatus.CLOSED, closed_at__isnull=False
    )


def _holds_category(category: str) -> Q:
    """A customer holds a value in a field of `category` (a null check on the
    ciphertext columns: no decryption)."""
    holding = Q()
    for name in fields_in_category(category):
        holding |= Q(**{f"{name}__isnull": False})
    return holding


def customers_holding_category(*, category: str) -> QuerySet[Customer]:
    """Customers not erased who still hold a value in a field of `category`."""
    return customers_not_erased().filter(_holds_category(category))


def customer_clock_filter(*, clock: str, before: datetime) -> Q:
    """The condition on customers whose `clock` ("created", "last_activity",
    "closed") started at or before `before`. Raises KeyError for another clock."""
    return Q(**{f"{CLOCK_FIELDS[clock]}__lte": before})


# Set-based reads for the apps above (incidents, consent, inventory): which customers
# a selection, an audience or a notice covers, as querysets their queries build on.


def customers_in_places(
    *, countries: Sequence[str], regions: Sequence[str]
) -> QuerySet[Customer]:
    """Customers in any of these countries or any of these regions (erased ones
    too)."""
    customers = Customer.objects.all()
    return customers.filter(country__in=countries) | customers.filter(
        region__in=regions
    )


def customers_created_between(*, start: datetime, end: datetime) -> QuerySet[Customer]:
    """Customers created from `start` to `end`, both included (erased ones too)."""
    return Customer.objects.filter(created_at__gte=start, created_at__lte=end)


def customer_ids_erased() -> QuerySet:
    """The ids of erased customers, as a subquery (`values("pk")`). They are few and
    indexed apart (customers_erased_idx): leaving them out with `NOT IN` this is far
    cheaper than joining every customer row."""
    return Customer.objects.filter(erased_at__isnull=False).values("pk")


def customer_ids_erased_sql() -> tuple[str, tuple[Any, ...]]:
    """`customer_ids_erased` as SQL text and its parameters, for a statement written
    by hand (`... AND customer_id NOT IN (<sql>)`)."""
    return customer_ids_erased().query.sql_with_params()


# Restriction (GDPR art. 18): a restricted customer is in no audience and no data
# share; staff see their full values only for the restriction's stated purpose.


def customer_restriction_active(*, customer: Customer) -> Restriction | None:
    """The customer's oldest restriction not lifted, or None when not restricted."""
    return (
        Restriction.objects.filter(customer_id=customer.pk, lifted_at__isnull=True)
        .order_by("placed_at", "pk")
        .first()
    )


def customer_restriction_of_request(
    *, customer_id: UUID, request_id: UUID
) -> Restriction | None:
    """The restriction a customer's request led to (the one in force, else the last
    lifted), or None."""
    return (
        Restriction.objects.filter(customer_id=customer_id, request_id=request_id)
        .order_by(F("lifted_at").desc(nulls_first=True), "-pk")
        .first()
    )


def customer_restrictions_active(*, customer: Customer) -> list[Restriction]:
    """Every restriction of the customer not lifted, oldest first."""
    return list(
        Restriction.objects.filter(
            customer_id=customer.pk, lifted_at__isnull=True
        ).order_by("placed_at", "pk")
    )


def customer_restrictions_active_for(
    *, customer_ids: Iterable[UUID]
) -> dict[UUID, list[Restriction]]:
    """The active restrictions of each of these customers (those restricted only),
    in one query."""
    found: dict[UUID, list[Restriction]] = {}
    customer_ids = list(customer_ids)
    if not customer_ids:
        return found
    rows = Restriction.objects.filter(
        customer_id__in=customer_ids, lifted_at__isnull=True
    ).order_by("placed_at", "pk")
    for restriction in rows:
        found.setdefault(restriction.customer_id, []).append(restriction)
    return found


def customer_restriction_get(*, restriction_id: int | str) -> Restriction:
    """One restriction by id, its customer joined. Raises NotFound."""
    try:
        return Restriction.objects.select_related("customer").get(pk=restriction_id)
    except (Restriction.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such restriction.") from None


def customer_ids_restricted() -> QuerySet:
    """The ids of restricted customers, as a subquery (`values("customer_id")`): few,
    and indexed apart (restriction_active_idx), so audiences leave them out with a
    cheap `NOT IN`, as they do erased ones."""
    # Unordered (Restriction's default ordering would follow it into every statement
    # it is embedded in; SQLite refuses that in a UNION).
    return (
        Restriction.objects.filter(lifted_at__isnull=True)
        .order_by()
        .values("customer_id")
    )


def customer_ids_restricted_sql() -> tuple[str, tuple[Any, ...]]:
    """`customer_ids_restricted` as SQL text and its parameters, for a statement
    written by hand (`... AND customer_id NOT IN (<sql>)`)."""
    return customer_ids_restricted().query.sql_with_params()


@dataclass(frozen=True)
class CustomerSql:
    """A customer row in a statement written by hand in another app (access's agent
    list), as SQL fragments under one alias: the table and its columns come from the
    model, so they stay this app's to name. Constant text: such a statement can be
    composed once and prepared."""

    source: str  # the FROM item: the table under the alias
    columns: str  # every column, in field order (what `model_from_row` reads back)
    id: str  # the primary key: join and narrow on it
    data_key_id: str  # the data key's id: join `crypto.keys.data_key_sql` on it
    newest_first: str  # an ORDER BY: newest first, then by id, as `customer_list`


def customer_sql(alias: str) -> CustomerSql:
    """The `CustomerSql` fragments of customers under `alias` (an SQL identifier
    written by the caller, never input)."""
    column = model_column_sql(Customer, alias)
    return CustomerSql(
        source=model_source_sql(Customer, alias),
        columns=model_columns_sql(Customer, alias),
        id=column["id"],
        data_key_id=column["data_key"],
        newest_first=f"{column['created_at']} DESC, {column['id']}",
    )


def customer_categories_held(*, customer_ids: Iterable[UUID]) -> dict[UUID, set[str]]:
    """Which data categories each of these customers holds anything in, in one query
    and without decryption (a null check on the ciphertext columns). Erased
    customers, and those whose record is gone, are not in it. `customer_ids` may be
    a queryset of ids (a subquery: no ids travel)."""
    categories = DataCategory.values  # a list built anew on every access
    annotations = {
        f"has_{category}": ExpressionWrapper(
            _holds_category(category), output_field=BooleanField()
        )
        for category in categories
    }
    rows = (
        Customer.objects.filter(pk__in=customer_ids, erased_at__isnull=True)
        .annotate(**annotations)
        .values_list("pk", *annotations)
    )
    return {
        pk: {c for c, held in zip(categories, has, strict=True) if held}
        for pk, *has in rows
    }


@dataclass(frozen=True)
class BackupCopiesEnd:
    """When the copies of a customer's data that backups hold stop being readable:
    the day the master key their data key was last wrapped under is retired (every
    older backup holds it under that version or an older one, retired no later)."""

    on: datetime  # the retirement's date: when it is due, or when it happened
    done: bool  # the version is retired
    # The key ring destroys it itself (an HSM, by beat's daily crypto.key_epoch);
    # otherwise (env) it is retired and an operator removes it from the configuration.
    destroyed_by_ring: bool


def customer_backup_copies_end(*, customer: Customer) -> BackupCopiesEnd | None:
    """When the copies of `customer`'s data in backups become unreadable (see
    `BackupCopiesEnd`); None when the database records no date for the version
    (one from before master keys were recorded, never activated). A destroyed data
    key keeps its version, so this holds after an erasure."""
    version = customer.data_key.kek_version
    found = master_key_unreadable_on(version=version)
    if found is None:
        return None
    on, done = found
    return BackupCopiesEnd(
        on=on, done=done, destroyed_by_ring=key_ring().destroys(version)
    )
