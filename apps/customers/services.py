"""Writes on customer records. PII is validated here and sealed by the model fields.

Lock order (apps/core/db.py): the customer, then its data key, then the audit chain.
"""

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

from django.db import IntegrityError, transaction
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext

from apps.accounts.models import Role, User
from apps.accounts.services import users_deactivate_bulk
from apps.audit import services as audit
from apps.core.db import declare_disposal, server_cursor
from apps.core.errors import DomainError, Forbidden, NotFound
from apps.core.etags import etag_check
from apps.core.fastdelete import delete_cascade, ids_in
from apps.core.i18n import language_is_known
from apps.core.idempotency import idempotency_forget
from apps.core.reasons import reason_require
from apps.crypto.bulk import BlindIndexer, BulkSealer, data_keys_insert, rows_copy
from apps.crypto.keys import key_scope
from apps.crypto.models import DataKey
from apps.crypto.services import (
    data_key_create,
    data_key_destroy,
    data_keys_create_bulk,
    data_keys_destroy_bulk,
)
from apps.customers.errors import CustomerConflict, CustomerError
from apps.customers.journal import (
    JournalEntry,
    UnreadableLine,
    erasure_journal_add,
    erasure_journal_read,
)
from apps.customers.models import (
    Customer,
    CustomerStatus,
    ErasureAction,
    Restriction,
    RestrictionSource,
)
from apps.customers.registry import PII_FIELD_NAMES
from apps.customers.selectors import customer_etag
from apps.customers.validation import (
    PersonMarkers,
    clean_card_last4,
    clean_country,
    clean_date_of_birth,
    clean_email,
    clean_phone,
    clean_region,
    person_markers,
    personal_data_found,
    personal_data_message,
    refuse_card_numbers,
)
from apps.webhooks.services import event_emit, events_emit_bulk

EDITABLE_FIELDS = frozenset({"country", "region", *PII_FIELD_NAMES})


def _clean(data: dict[str, Any], *, country: str) -> dict[str, Any]:
    """Validate and normalise PII input. Raises CustomerError naming the field."""
    unknown = set(data) - EDITABLE_FIELDS
    if unknown:
        raise CustomerError("This field cannot be set.", field=sorted(unknown)[0])
    clean: dict[str, Any] = {
        k: (v.strip() if isinstance(v, str) else v) for k, v in data.items()
    }
    # Phones are validated as phones; every other text must not hold a card number.
    refuse_card_numbers(
        {k: v for k, v in clean.items() if k != "phone"}, country=country
    )
    if "country" in clean:
        clean["country"] = clean_country(clean["country"])
    if "region" in clean:
        clean["region"] = clean_region(clean["region"], country=country)
    for name, cleaner in (("email", clean_email), ("card_last4", clean_card_last4)):
        if clean.get(name):
            clean[name] = cleaner(clean[name])
    if clean.get("phone"):
        clean["phone"] = clean_phone(clean["phone"], country=country)
    if clean.get("date_of_birth"):
        clean["date_of_birth"] = clean_date_of_birth(clean["date_of_birth"])
    # An empty PII value is stored as no value at all.
    return {
        k: (None if v == "" and k in PII_FIELD_NAMES else v) for k, v in clean.items()
    }


def free_text_check(
    *,
    text: str,
    field: str,
    customer: Customer | None = None,
    error: type[DomainError] = CustomerError,
    label: str = "reason",
) -> None:
    """Refuse free text staff type about a customer (a reason, a note: kept for good
    in the audit trail, the reveals table, a request's history) that holds personal
    data: any email address, phone, card or national-id-shaped number, or this
    customer's own name, contact details or identifiers, decrypted here (one data key,
    never logged). Raises `error` naming `field` and each kind of value found (the
    customer's name, a phone number, ...); the message never repeats the text, nor the
    word that matched."""
    markers = _markers(customer) if customer is not None else None
    kinds = personal_data_found(text, markers)
    if kinds:
        raise error(
            personal_data_message(label=label, kinds=kinds),
            field=field,
            code="personal_data",
        )


_MARKER_FIELDS = (
    "full_name",
    "email",
    "phone",
    "national_id",
    "address_line",
    "payment_token",
)


def _markers(customer: Customer) -> PersonMarkers:
    if customer.is_erased:
        return PersonMarkers()
    values = {name: getattr(customer, name) for name in _MARKER_FIELDS}
    # An erased or empty field reads as ERASED or None: nothing to look for.
    return person_markers(
        **{name: v for name, v in values.items() if isinstance(v, str)}
    )


def _save_unique(customer: Customer, **kwargs: Any) -> None:
    try:
        with transaction.atomic():
            customer.save(**kwargs)
    except IntegrityError as exc:
        if "email_index" in str(exc):
            raise CustomerConflict(
                "Another customer already has this email address.", field="email"
            ) from None
        raise


def customer_input_clean(*, data: dict[str, Any]) -> dict[str, Any]:
    """A new customer's fields validated and normalised as `customer_create` does them
    (card numbers, formats, national ids). Raises CustomerError naming the field."""
    if not data.get("country"):
        raise CustomerError("This field is required.", field="country")
    return _clean(data, country=clean_country(data["country"]))


@transaction.atomic
def customer_create(*, actor: User | None, data: dict[str, Any]) -> Customer:
    """Create a customer with a data key of their own. Raises CustomerError."""
    clean = customer_input_clean(data=data)
    now = timezone.now()
    customer = Customer(
        data_key=data_key_create(), created_at=now, last_activity_at=now
    )
    for name, value in clean.items():
        setattr(customer, name, value)
    _save_unique(customer, force_insert=True)
    audit.record(
        actor=actor,
        action="customer.created",
        target=customer,
        details={"country": customer.country, "fields": sorted(clean)},
    )
    return customer


def customer_changes(*, customer: Customer, data: dict[str, Any]) -> dict[str, Any]:
    """The fields of `data`, validated and normalised as `customer_update` does them,
    whose values differ from the customer's (decrypted here, never logged). Raises
    CustomerError."""
    country = (
        clean_country(data["country"]) if data.get("country") else customer.country
    )
    clean = _clean(data, country=country)
    return {
        name: data[name]
        for name, value in clean.items()
        if getattr(customer, name) != value
    }


@transaction.atomic
def customer_update(
    *,
    actor: User | None,
    customer: Customer,
    data: dict[str, Any],
    if_match: str | None = None,
    audited: bool = True,
    request_id: Any = None,
) -> Customer:
    """Change some fields of a customer; with `if_match`, only if it still names the
    customer's version (`customer_etag`). `audited=False`: the caller records the
    change in this transaction (an import, one event per batch). `request_id`: the
    data request it applies (its webhook event names it). Raises CustomerError,
    CustomerConflict, PreconditionFailed."""
    customer = _locked(customer)
    if if_match is not None:
        # Under the row lock: of two changes sent with one version, one is refused.
        etag_check(if_match=if_match, current=customer_etag(customer))
    if customer.is_erased:
        raise CustomerConflict("This customer was erased; the record holds no data.")
    country = (
        clean_country(data["country"]) if data.get("country") else customer.country
    )
    clean = _clean(data, country=country)
    changed = sorted(
        name for name, value in clean.items() if getattr(customer, name) != value
    )
    for name, value in clean.items():
        setattr(customer, name, value)
    customer.last_activity_at = timezone.now()
    _save_unique(customer)
    if changed:  # field names only, never values; before the audit chain
        event_emit(
            type="customer.rectified",
            customer_id=customer.pk,
            data={"fields": changed},
            request_id=request_id,
        )
    if audited:
        audit.record(
            actor=actor,
            action="customer.updated",
            target=customer,
            details={"fields": sorted(clean)},
        )
    return customer


@transaction.atomic
def customer_close(*, actor: User, customer: Customer) -> Customer:
    """Close a customer's account (retention clocks for closed accounts start)."""
    customer = _locked(customer)
    if customer.status == CustomerStatus.CLOSED:
        raise CustomerConflict("This account is already closed.")
    customer.status = CustomerStatus.CLOSED
    customer.closed_at = timezone.now()
    customer.save(update_fields=["status", "closed_at"])
    audit.record(actor=actor, action="customer.closed", target=customer)
    return customer


@transaction.atomic
def customer_shred(
    *,
    actor: User | None,
    customer: Customer,
    cause: str = "request",
    request_id: Any = None,
) -> Customer:
    """Crypto-shred a customer: destroy their data key, clear PII and blind indexes.
    Checks no legal hold: erase through `apps.retention.services.customer_erase`,
    which does (legal holds are retention's, and retention already depends on this
    app). Raises CustomerConflict."""
    customer = _locked(customer)
    if customer.is_erased:
        raise CustomerConflict("This customer was already erased.")
    data_key_destroy(data_key=customer.data_key)
    now = timezone.now()
    update: dict[str, Any] = dict.fromkeys(PII_FIELD_NAMES)
    update.update(
        email_index=None,
        phone_index=None,
        erased_at=now,
        status=CustomerStatus.CLOSED,
        closed_at=customer.closed_at or now,
    )
    Customer.objects.filter(pk=customer.pk).update(**update)
    idempotency_forget(subjects=[customer.pk])
    erasure_journal_add(
        action=ErasureAction.ERASED,
        customers=[(customer.pk, customer.data_key_id)],
        at=now,
    )
    customer.refresh_from_db()
    # Under the customer's lock, before the audit chain (apps/core/db.py).
    event_emit(
        type="customer.erased",
        customer_id=customer.pk,
        data={"cause": cause},
        request_id=request_id,
    )
    audit.record(
        actor=actor,
        action="customer.erased",
        target=customer,
        details={"data_key": str(customer.data_key_id), "cause": cause},
    )
    return customer


# Restriction (GDPR art. 18) ---------------------------------------------------------


@transaction.atomic
def customer_restrict(
    *,
    actor: User | None,
    customer: Customer,
    purpose: str,
    source: str,
    request_id: UUID | None = None,
) -> Restriction:
    """Restrict the customer's data to `purpose` (the stated ground, e.g. "legal
    claims"): from the commit they are in no audience and no data share, and staff
    reveal their values only for that purpose. Placing the same restriction again
    (same source and request) returns the one in force; one a request led to is
    placed once: after a privacy admin lifted it, it is returned lifted (`lifted_at`
    set), not placed again. Audited. Lock order: the
    customer's row (the caller may hold it already), then the audit chain. Raises
    CustomerError, CustomerConflict (erased), NotFound."""
    if source not in RestrictionSource.values:
        raise CustomerError("Unknown source.", field="source")
    purpose = reason_require(
        purpose,
        field="purpose",
        message="State the purpose the data stays usable for ({min} characters or "
        "more).",
        error=CustomerError,
    )[:300]
    # Kept in plain text and shown to staff: not the customer's data.
    free_text_check(text=purpose, field="purpose", customer=customer, label="purpose")
    erased_at = customer_lock_erased_at(customer_id=customer.pk)
    if erased_at is not None:
        raise CustomerConflict("This customer was erased; nothing is left to restrict.")
    # Under the customer's lock, which a lift takes too: a lift committed meanwhile
    # is seen here.
    same = Restriction.objects.filter(
        customer_id=customer.pk, source=source, request_id=request_id
    )
    if request_id is None:
        same = same.filter(lifted_at__isnull=True)
    # The one in force first, else the last lifted.
    current = same.order_by(F("lifted_at").desc(nulls_first=True), "-pk").first()
    if current is not None:
        return current
    restriction = Restriction.objects.create(
        customer_id=customer.pk,
        purpose=purpose,
        source=source,
        request_id=request_id,
        placed_by=actor if getattr(actor, "pk", None) else None,
        placed_at=timezone.now(),
    )
    # A write of the customer for the sync feed (`customers_changed_since`).
    Customer.objects.filter(pk=customer.pk).update()
    event_emit(
        type="customer.restricted",
        customer_id=customer.pk,
        data={
            "restriction_id": restriction.pk,
            "source": source,
            "request_id": str(request_id) if request_id else None,
        },
        request_id=request_id,
    )
    audit.record(
        actor=actor,
        action="customer.restricted",
        target=customer,
        details={
            "restriction": restriction.pk,
            "source": source,
            "purpose": purpose,
            "request": str(request_id) if request_id else None,
        },
    )
    return restriction


@transaction.atomic
def customer_restriction_lift(
    *,
    actor: User,
    restriction: Restriction,
    reason: str,
    customer_told: bool,
) -> Restriction:
    """Lift a restriction (privacy admins), with a reason, once the customer was told
    it would be lifted (GDPR art. 18(3)): the admin confirms it, and the time is
    kept. Audited. Lock order: the customer's row, then the restriction, then the
    audit chain. Raises Forbidden, CustomerError, CustomerConflict (lifted already)."""
    if getattr(actor, "role", "") != Role.PRIVACY_ADMIN:
        raise Forbidden("Only privacy admins lift a restriction.")
    reason = reason_require(
        reason,
        field="reason",
        message="Give the reason for lifting it ({min} characters or more).",
        error=CustomerError,
    )
    customer = restriction.customer
    free_text_check(text=reason, field="reason", customer=customer, error=CustomerError)
    if not customer_told:
        raise CustomerError(
            "Tell the customer before the restriction is lifted (GDPR art. 18(3)), "
            "then confirm it here.",
            field="customer_told",
        )
    customer_lock_erased_at(customer_id=restriction.customer_id)
    restriction = Restriction.objects.select_for_update(no_key=True).get(
        pk=restriction.pk
    )
    if restriction.lifted_at is not None:
        raise CustomerConflict("This restriction was already lifted.")
    now = timezone.now()
    restriction.lifted_at = now
    restriction.lifted_by = actor
    restriction.lift_reason = reason[:500]
    restriction.customer_told_confirmed_at = now
    restriction.save(
        update_fields=[
            "lifted_at",
            "lifted_by",
            "lift_reason",
            "customer_told_confirmed_at",
        ]
    )
    Customer.objects.filter(pk=restriction.customer_id).update()
    event_emit(
        type="customer.restriction_lifted",
        customer_id=restriction.customer_id,
        data={"restriction_id": restriction.pk},
    )
    audit.record(
        actor=actor,
        action="customer.restriction_lifted",
        target=customer,
        details={"restriction": restriction.pk, "reason": reason},
    )
    return restriction


def customer_lock(*, customer_id: Any, with_data_key: bool = True) -> Customer:
    """The customer's row, locked until the transaction ends (FOR NO KEY UPDATE), read
    afresh, with its data key (read and locked too) unless `with_data_key` is False.
    Raises NotFound if it was deleted meanwhile."""
    rows = Customer.objects.select_for_update(no_key=True)
    if with_data_key:
        rows = rows.select_related("data_key")
    found = rows.filter(pk=customer_id).first()
    if found is None:
        raise NotFound("No such customer.")
    return found


def customer_lock_erased_at(*, customer_id: Any) -> datetime | None:
    """Lock the customer's row until the transaction ends (FOR NO KEY UPDATE), the
    lock alone without reading the record; returns when they were erased, or None.
    Raises Customer.DoesNotExist if the row is gone."""
    return (
        Customer.objects.select_for_update(no_key=True)
        .filter(pk=customer_id)
        .values_list("erased_at", flat=True)
        .get()
    )


def customer_user_link(*, customer: Customer, user: User) -> None:
    """Make `user` the customer's login. The caller holds the customer's row lock
    (customer_lock)."""
    if customer.user_id != user.pk:
        customer.user = user
        customer.save(update_fields=["user"])


def customer_language_set(*, customer: Customer, language: str) -> Customer:
    """Save the language the customer chose for Amanah's pages, emails and notices (a
    code of settings.LANGUAGES; blank: none, the browser's is used). A display
    preference, not personal data the record holds: not audited, no webhook event,
    the sync clock untouched (one column, no lock). Raises CustomerError."""
    if language and not language_is_known(language):
        raise CustomerError(
            gettext("Unknown language."), field="language", code="unknown"
        )
    Customer.objects.filter(pk=customer.pk).update(language=language)
    customer.language = language
    return customer


def _locked(customer: Customer) -> Customer:
    return customer_lock(customer_id=customer.pk)


def customers_bulk_create(
    *,
    rows: Iterable[dict[str, Any]],
    batch_size: int = 2000,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Insert many customers (demo data, benchmarks), one data key each, in batches.

    Each row holds PII and plain columns (`status`, `created_at`, ...); PII is validated
    as in `customer_create`. One audit event per batch. Raises CustomerError.
    """
    created = 0
    batch: list[Customer] = []

    def flush() -> None:
        nonlocal created
        with transaction.atomic(), key_scope():
            keys = data_keys_create_bulk(count=len(batch))
            for customer, key in zip(batch, keys, strict=True):
                customer.data_key = key
            Customer.objects.bulk_create(batch)
            audit.record(
                actor=None,
                action="customer.bulk_created",
                details={"count": len(batch)},
            )
        created += len(batch)
        if on_batch:
            on_batch(len(batch))
        batch.clear()

    now = timezone.now()
    for row in rows:
        pii = {k: v for k, v in row.items() if k in EDITABLE_FIELDS}
        plain = {k: v for k, v in row.items() if k not in EDITABLE_FIELDS}
        country = clean_country(pii.get("country", ""))
        customer = Customer(
            created_at=plain.pop("created_at", now),
            last_activity_at=plain.pop("last_activity_at", now),
            **plain,
        )
        for name, value in _clean(pii, country=country).items():
            setattr(customer, name, value)
        batch.append(customer)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return created


@dataclasses.dataclass
class PreparedCustomers:
    """New customers validated and sealed, not yet written (`customers_prepare_bulk`):
    per input row in order, the new customer's id or the CustomerError that refused
    it; the rows to insert, their data keys (id, wrapped) and the master key version
    that wrapped them. Plain values: it may travel between processes."""

    results: list[UUID | CustomerError]
    table: list[list[Any]]
    keys: list[tuple[UUID, bytes]]
    kek_version: int


_BULK_COLUMNS = [
    "id",
    "data_key_id",
    "country",
    "region",
    *PII_FIELD_NAMES,
    "email_index",
    "phone_index",
]


def customers_prepare_bulk(
    *, rows: Sequence[dict[str, Any]], kek_version: int | None = None
) -> PreparedCustomers:
    """Validate `rows` as `customer_create` does each, and seal the valid ones, each
    under a data key of its own: nothing is written (`customers_insert_prepared`
    does it), so this CPU work can run elsewhere while the previous batch is
    written. With `kek_version` (the master key in use, which this process's key
    ring holds) no query is made at all: an import's worker process makes none.

    No model instance per row: each row is sealed as the model's fields seal a save
    (`BulkSealer`: its own data key, the same associated data), its blind indexes
    computed as theirs are (the phone, already in E.164 from its validation, is not
    parsed a second time): instances, and Django's bulk_create quoting the
    ciphertexts, cost more than the sealing (bench/import.py)."""
    results: list[UUID | CustomerError] = []
    valid: list[tuple[UUID, dict[str, Any]]] = []
    for data in rows:
        try:
            clean = customer_input_clean(data=data)
        except CustomerError as exc:
            results.append(exc)
            continue
        pk = uuid4()
        results.append(pk)
        valid.append((pk, clean))
    if not valid:
        return PreparedCustomers(results=results, table=[], keys=[], kek_version=0)
    sealer = BulkSealer(Customer, PII_FIELD_NAMES, version=kek_version)
    emails = BlindIndexer(Customer._meta.get_field("email_index"))
    phones = BlindIndexer(Customer._meta.get_field("phone_index"))
    table = []
    for pk, clean in valid:
        key_id, sealed = sealer.seal(pk, [clean.get(n) for n in PII_FIELD_NAMES])
        email, phone = clean.get("email"), clean.get("phone")
        table.append(
            [
                pk,
                key_id,
                clean["country"],
                clean.get("region") or "",
                *sealed,
                emails.digest(email) if email else None,
                phones.normalized(phone) if phone else None,
            ]
        )
    return PreparedCustomers(
        results=results, table=table, keys=sealer.keys, kek_version=sealer.version
    )


def customers_insert_prepared(
    *, prepared: PreparedCustomers
) -> list[UUID | CustomerError]:
    """Insert prepared customers (`customers_prepare_bulk`), their data keys in one
    statement and the customers in another (a binary COPY, `rows_copy`), in the caller's
    transaction, which records the audit event (one per batch). Returns the
    prepared results. The customers are inserted in the order of their email's blind
    index: an insert waits on another transaction's uncommitted row with the same
    email (its unique index), and two imports that insert in one order never wait on
    each other in a cycle (apps/core/db.py)."""
    if prepared.table:
        now = timezone.now()
        data_keys_insert(keys=prepared.keys, version=prepared.kek_version, now=now)
        email = _BULK_COLUMNS.index("email_index")
        rows_copy(
            Customer,
            columns=_BULK_COLUMNS,
            rows=sorted(prepared.table, key=lambda row: row[email] or ""),
            constants={
                "status": CustomerStatus.ACTIVE,
                "created_at": now,
                "last_activity_at": now,
                "updated_at": now,
            },
        )
    return prepared.results


def customers_lock_bulk(*, customer_ids: Iterable[Any]) -> dict[Any, datetime | None]:
    """Lock many customers' rows until the transaction ends (FOR NO KEY UPDATE), in
    id order so that two such batches never cross; returns when each was erased.
    Customers deleted meanwhile are missing from the answer."""
    rows = (
        Customer.objects.select_for_update(no_key=True)
        .filter(pk__in=set(customer_ids))
        .order_by("pk")
        .values_list("pk", "erased_at")
    )
    return dict(rows)


# Bulk disposal (retention) ----------------------------------------------------------


def _pii_cleared() -> dict[str, Any]:
    return {name: None for name in PII_FIELD_NAMES} | {
        "email_index": None,
        "phone_index": None,
    }


def customers_shred_bulk(
    *, customer_ids: list[Any], anonymize: bool = False, journal: bool = True
) -> int:
    """Crypto-shred many customers in a few statements: destroy their data keys, clear
    PII and blind indexes. `anonymize` also drops the region, so what remains (country,
    dates, status) cannot single anyone out. Runs in the caller's transaction, which
    records the erasures for the erasure journal (`journal=False`: only when
    reapplying that journal)."""
    rows = Customer.objects.filter(pk__in=customer_ids, erased_at__isnull=True)
    pairs = list(rows.values_list("pk", "data_key_id"))
    data_keys_destroy_bulk(data_key_ids=[key_id for _, key_id in pairs])
    now = timezone.now()
    update = _pii_cleared() | {"erased_at": now}
    if anonymize:
        update["region"] = ""
    count = rows.update(**update)
    # One event per customer erased here, in one INSERT (a reapplied erasure too:
    # the outbox rows of the first one may be what the restore lost).
    cause = "anonymized" if anonymize else "erased"
    events_emit_bulk(
        type="customer.erased",
        items=[(customer_id, {"cause": cause}) for customer_id, _ in pairs],
    )
    idempotency_forget(subjects=customer_ids)
    _deactivate_logins(customer_ids)
    if journal:
        erasure_journal_add(
            action=ErasureAction.ANONYMIZED if anonymize else ErasureAction.ERASED,
            customers=pairs,
            at=now,
        )
    return count


def customers_clear_fields_bulk(
    *, customer_ids: list[Any], fields: list[str], journal: bool = True
) -> int:
    """Dispose of some PII fields of many customers (e.g. free-text notes). Runs in
    the caller's transaction, which records the clearing (field names only) for the
    erasure journal (`journal=False`: only when reapplying that journal). Raises
    CustomerError for a field that is not PII."""
    unknown = set(fields) - set(PII_FIELD_NAMES)
    if unknown:
        raise CustomerError("Unknown field.", field=sorted(unknown)[0])
    update: dict[str, Any] = dict.fromkeys(fields)
    if "email" in fields:
        update["email_index"] = None
    if "phone" in fields:
        update["phone_index"] = None
    idempotency_forget(subjects=customer_ids)
    rows = Customer.objects.filter(pk__in=customer_ids)
    if journal:
        erasure_journal_add(
            action=ErasureAction.CLEARED,
            customers=rows.values_list("pk", "data_key_id"),
            at=timezone.now(),
            fields=sorted(fields),
        )
    return rows.update(**update)


def customers_delete_bulk(*, customer_ids: list[Any], journal: bool = True) -> int:
    """Delete many customers with everything that depends on them, set-based, then
    their data keys. Runs in the caller's transaction, which records the deletions
    for the erasure journal (`journal=False`: only when reapplying that journal)."""
    customer_ids = list(customer_ids)
    with server_cursor() as cursor:
        where, params = ids_in("id", customer_ids)
        # `where` holds placeholders only (ids_in); the ids are bound parameters.
        sql = f"SELECT id, data_key_id FROM customers_customer WHERE {where}"  # noqa: S608  # nosec B608
        cursor.execute(sql, params)
        pairs = [(row[0], row[1]) for row in cursor.fetchall()]
    # One event per customer deleted here, in one INSERT (as customers_shred_bulk).
    events_emit_bulk(
        type="customer.erased",
        items=[(customer_id, {"cause": "deleted"}) for customer_id, _ in pairs],
    )
    _deactivate_logins(customer_ids)
    idempotency_forget(subjects=customer_ids)
    deleted = delete_cascade(Customer, customer_ids)
    delete_cascade(DataKey, [key_id for _, key_id in pairs], emptied=(Customer,))
    if journal:
        erasure_journal_add(
            action=ErasureAction.DELETED, customers=pairs, at=timezone.now()
        )
    return deleted


def _deactivate_logins(customer_ids: list[Any]) -> None:
    """A disposed customer can no longer sign in (the login row stays for the audit):
    one UPDATE of their logins, found by a subquery."""
    users_deactivate_bulk(
        user_ids=Customer.objects.filter(
            pk__in=customer_ids, user__isnull=False
        ).values("user_id")
    )


# Restoring from a backup -----------------------------------------------------------

# Line numbers of unreadable lines kept for the summary.
UNREADABLE_SHOWN = 5


@dataclasses.dataclass
class ReapplyResult:
    """Journal lines, by what reapplying them found."""

    reapplied: int = 0
    already_applied: int = 0
    # Lines naming a customer this database does not hold (created after the backup,
    # or deleted since): nothing of theirs to erase here.
    not_found: int = 0
    unreadable: int = 0
    # The first few unreadable lines' numbers.
    unreadable_lines: list[int] = dataclasses.field(default_factory=list)


def erasures_reapply(
    *,
    path: Path,
    batch_size: int = 5000,
    on_progress: Callable[[int], None] | None = None,
) -> ReapplyResult:
    """Apply again each erasure of the erasure journal at `path` that this database
    does not show (restored from a backup taken before it): shred the customers still
    readable (with their erasure's time), delete those still here, clear fields still
    set. No legal hold is asked about (each erasure happened already), nothing new is
    journaled (the journal holds it), and a second run changes nothing. A batch of
    lines per transaction; one audit event. Unreadable lines are counted and skipped.
    Raises OSError when the file cannot be read."""
    result = ReapplyResult()
    batch: list[JournalEntry] = []
    reported = 0

    def apply() -> None:
        nonlocal reported
        if batch:
            with transaction.atomic():
                # Deletions replay a disposal: the consent ledger's rows go too.
                declare_disposal()
                _reapply_batch(batch, result)
            batch.clear()
        if on_progress is not None and last > reported:
            on_progress(last - reported)
            reported = last

    last = 0
    for item in erasure_journal_read(path):
        last = item.line
        if isinstance(item, UnreadableLine):
            result.unreadable += 1
            if len(result.unreadable_lines) < UNREADABLE_SHOWN:
                result.unreadable_lines.append(item.line)
            continue
        batch.append(item)
        if len(batch) >= batch_size:
            apply()
    apply()
    with transaction.atomic():
        audit.record(
            actor=None,
            action="erasures.reapplied",
            details={
                "reapplied": result.reapplied,
                "already_applied": result.already_applied,
                "not_found": result.not_found,
                "unreadable": result.unreadable,
            },
        )
    return result


def _reapply_batch(entries: list[JournalEntry], result: ReapplyResult) -> None:
    """Work out, line by line in the journal's order, what each entry still has to
    do here (as if the lines before it were done), then do it set-based: clear, shred,
    delete."""
    ids = {entry.customer for entry in entries}
    # Each customer here: readable (True) or erased; absent, not here (or deleted by
    # a line before).
    readable = {
        pk: erased_at is None
        for pk, erased_at in Customer.objects.filter(pk__in=ids).values_list(
            "pk", "erased_at"
        )
    }
    still_set = _fields_still_set(entries, readable)
    clear: dict[tuple[str, ...], set[UUID]] = defaultdict(set)
    shred: dict[bool, dict[UUID, datetime]] = {False: {}, True: {}}
    delete: set[UUID] = set()
    for entry in entries:
        customer = entry.customer
        state = readable.get(customer)
        if entry.action == ErasureAction.DELETED:
            if state is None:
                result.already_applied += 1
                continue
            delete.add(customer)
            del readable[customer]
        elif state is None:
            result.not_found += 1
            continue
        elif not state:
            result.already_applied += 1
            continue
        elif entry.action == ErasureAction.CLEARED:
            if customer not in still_set[entry.fields]:
                result.already_applied += 1
                continue
            clear[entry.fields].add(customer)
            still_set[entry.fields].discard(customer)
        else:
            shred[entry.action == ErasureAction.ANONYMIZED][customer] = entry.at
            readable[customer] = False
        result.reapplied += 1
    for fields, customer_ids in clear.items():
        customers_clear_fields_bulk(
            customer_ids=list(customer_ids), fields=list(fields), journal=False
        )
    for anonymize, times in shred.items():
        if times:
            customers_shred_bulk(
                customer_ids=list(times), anonymize=anonymize, journal=False
            )
            _erased_at_restore(times)
    if delete:
        customers_delete_bulk(customer_ids=list(delete), journal=False)


def _fields_still_set(
    entries: list[JournalEntry], readable: dict[UUID, bool]
) -> dict[tuple[str, ...], set[UUID]]:
    """For each set of fields the batch's "cleared" lines name, the customers (here,
    not erased) still holding a value in one of them: a null check, no decryption."""
    wanted: dict[tuple[str, ...], set[UUID]] = defaultdict(set)
    for entry in entries:
        if entry.action == ErasureAction.CLEARED and readable.get(entry.customer):
            wanted[entry.fields].add(entry.customer)
    found: dict[tuple[str, ...], set[UUID]] = defaultdict(set)
    for fields, customer_ids in wanted.items():
        holding = Q()
        for name in fields:
            holding |= Q(**{f"{name}__isnull": False})
        found[fields] = set(
            Customer.objects.filter(holding, pk__in=customer_ids).values_list(
                "pk", flat=True
            )
        )
    return found


# Customers given one erasure time per statement: a CASE of this many times at most.
_TIMES_PER_UPDATE = 500


def _erased_at_restore(times: dict[UUID, datetime]) -> None:
    """Set each customer's `erased_at` to when the journal says they were erased (a
    disposal batch shares one time, so usually one statement)."""
    by_time: dict[datetime, list[UUID]] = defaultdict(list)
    for customer, at in times.items():
        by_time[at].append(customer)
    groups = list(by_time.items())
    for start in range(0, len(groups), _TIMES_PER_UPDATE):
        chunk = groups[start : start + _TIMES_PER_UPDATE]
        if len(chunk) == 1:
            at, customer_ids = chunk[0]
            Customer.objects.filter(pk__in=customer_ids).update(erased_at=at)
            continue
        Customer.objects.filter(
            pk__in=[customer for _, ids in chunk for customer in ids]
        ).update(
            erased_at=Case(
                *(When(pk__in=ids, then=Value(at)) for at, ids in chunk),
                output_field=DateTimeField(),
            )
        )
