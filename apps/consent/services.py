"""Writes on consent: the append-only ledger and the state kept beside it, double
opt-in, Global Privacy Control, unsubscribe tokens, notices.

Lock order (apps/core/db.py): the customer, then their consent state and opt-in
requests, then the audit chain; a notice being published, then the audit chain.
"""

import hashlib
import hmac
import logging
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import connection, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext

from apps.accounts.models import User
from apps.audit import services as audit
from apps.consent.errors import ConsentError, TokenExpired, TokenInvalid
from apps.consent.models import (
    ConsentEvent,
    ConsentSource,
    ConsentState,
    MarketingObjection,
    NoticeAcknowledgement,
    NoticeChange,
    OptInRequest,
    PrivacyNotice,
    Purpose,
)
from apps.consent.selectors import (
    NoticeText,
    notice_current,
    notice_current_version,
    notice_text,
    purpose_get_active,
    purpose_list_active,
    purpose_list_direct_marketing,
    purpose_text,
)
from apps.core.db import declare_disposal, server_cursor
from apps.core.errors import NotFound
from apps.core.i18n import language_is_known
from apps.core.links import public_url
from apps.core.mail import send_unless_refused
from apps.crypto.bulk import rows_copy
from apps.customers.models import Customer
from apps.customers.selectors import (
    customer_get,
    customer_ids_erased,
    customer_language,
    customers_not_erased,
)
from apps.customers.services import (
    customer_lock_erased_at,
    customers_lock_bulk,
    free_text_check,
)
from apps.webhooks.services import event_emit, events_emit_bulk

logger = logging.getLogger(__name__)

GPC_PURPOSE = "partner_sharing"
OPT_IN_SALT = "amanah.consent.opt-in"
UNSUBSCRIBE_SALT = "amanah.consent.unsubscribe"


def evidence_hash(*, ip: str = "", user_agent: str = "") -> str:
    """A keyed hash of the request's evidence: provable later, but no raw IP or UA."""
    if not (ip or user_agent):
        return ""
    key = hashlib.sha256(
        b"amanah.consent.evidence:" + settings.SECRET_KEY.encode()
    ).digest()
    return hmac.new(key, f"{ip}|{user_agent}".encode(), hashlib.sha256).hexdigest()


def _purpose(code: str) -> Purpose:
    purpose = purpose_get_active(code=code)
    if purpose is None:
        raise ConsentError(gettext("Unknown purpose."), field="purpose", code="unknown")
    return purpose


# The customer's own ways to grant: after an objection to direct marketing only these
# grant a direct-marketing purpose again.
CUSTOMER_SOURCES = (ConsentSource.SELF_SERVICE, ConsentSource.DOUBLE_OPT_IN)


def _objection_check(*, customer: Customer, purpose: Purpose, source: str) -> None:
    """Refuse a grant of a direct-marketing purpose the customer objected to, unless
    the customer gives it themselves. Raises ConsentError."""
    if not purpose.direct_marketing or source in CUSTOMER_SOURCES:
        return
    if MarketingObjection.objects.filter(customer_id=customer.pk).exists():
        raise ConsentError(
            gettext(
                "The customer objected to direct marketing: only they can agree to "
                "it again, on their privacy page."
            ),
            field="purpose",
            code="objected",
        )


def _customer_lock(customer: Customer) -> datetime | None:
    """Lock the customer's row for this transaction; returns when it was erased.

    First in every consent write: concurrent changes for one customer queue up, so the
    state always equals a replay of the events in id order."""
    return customer_lock_erased_at(customer_id=customer.pk)


@transaction.atomic
def consent_record(
    *,
    actor: User | None,
    customer: Customer,
    purpose_code: str,
    granted: bool,
    source: str,
    evidence: str = "",
    reason: str = "",
    at: datetime | None = None,
) -> ConsentEvent:
    """Append a grant or withdrawal and update the state in the same transaction;
    `at` is when the customer gave it (an import's original time), else now.

    Raises ConsentError. A change equal to the current state is still recorded: it is
    the customer's word at that time, under the notice then in force.
    """
    purpose = _purpose(purpose_code)
    if source not in ConsentSource.values:
        raise ConsentError("Unknown source.", field="source")
    if reason:  # kept in the audit trail for good: not the customer's data
        free_text_check(
            text=reason, field="reason", customer=customer, error=ConsentError
        )
    if _customer_lock(customer) is not None:
        raise ConsentError("This customer was erased.", field="customer")
    if granted:
        # Under the customer's lock: an objection committing meanwhile is seen.
        _objection_check(customer=customer, purpose=purpose, source=source)
    now = timezone.now()
    if at is None:
        at, notice_version = now, notice_current_version()
    else:
        notice = notice_current(at=at)
        notice_version = notice.version if notice else 0
    event = ConsentEvent.objects.create(
        customer=customer,
        purpose=purpose,
        granted=granted,
        notice_version=notice_version,
        source=source,
        actor=actor if getattr(actor, "pk", None) else None,
        created_at=at,
        evidence_hash=evidence,
    )
    ConsentState.objects.update_or_create(
        customer=customer,
        purpose=purpose,
        defaults={
            "granted": granted,
            "notice_version": event.notice_version,
            "source": source,
            "updated_at": now,
            "last_event_id": event.pk,
        },
    )
    if granted:
        OptInRequest.objects.filter(
            customer=customer, purpose=purpose, confirmed_at__isnull=True
        ).update(expires_at=now)
    details = {
        "purpose": purpose.code,
        "source": source,
        "notice": event.notice_version,
    }
    if reason:
        details["reason"] = reason
    # Every ledger change (grants, withdrawals, unsubscribes, GPC, objections) is
    # told to the webhooks' outbox in this transaction, under the customer's lock and
    # before the audit chain (apps/core/db.py).
    event_emit(
        type="consent.changed",
        customer_id=customer.pk,
        data={
            "purpose": purpose.code,
            "granted": granted,
            "source": source,
            "notice_version": event.notice_version,
            "at": at.isoformat(),
        },
    )
    audit.record(
        actor=actor,
        action="consent.granted" if granted else "consent.withdrawn",
        target=customer,
        details=details,
    )
    return event


def consent_grant(
    *,
    actor: User | None,
    customer: Customer,
    purpose_code: str,
    source: str,
    evidence: str = "",
    reason: str = "",
) -> ConsentEvent | OptInRequest:
    """Grant a purpose; one that needs double opt-in returns a pending request instead
    and emails the confirmation link. Raises ConsentError."""
    purpose = _purpose(purpose_code)
    if purpose.double_opt_in and source != ConsentSource.DOUBLE_OPT_IN:
        # Staff asking for a confirmation would market to an objecting customer.
        _objection_check(customer=customer, purpose=purpose, source=source)
        # The email in the language the customer asked in, if they asked themselves.
        requested = (
            translation.get_language() if source == ConsentSource.SELF_SERVICE else None
        )
        return opt_in_request(customer=customer, purpose=purpose, requested=requested)
    return consent_record(
        actor=actor,
        customer=customer,
        purpose_code=purpose_code,
        granted=True,
        source=source,
        evidence=evidence,
        reason=reason,
    )


# An answer from an earlier system: (customer id, purpose code, granted, its time).
ImportedConsent = tuple[Any, str, bool, datetime]


def consents_import_refusals(
    *, items: Sequence[ImportedConsent]
) -> dict[int, ConsentError]:
    """The items `consents_import_bulk` would refuse, by position (an unknown purpose,
    a grant of direct marketing after the customer objected to it): read before any
    write, so that an import refuses their rows alone. One query."""
    purposes = {p.code: p for p in purpose_list_active()}
    objected = set(
        MarketingObjection.objects.filter(
            customer_id__in={item[0] for item in items}
        ).values_list("customer_id", flat=True)
    )
    refusals: dict[int, ConsentError] = {}
    for i, (customer_id, code, granted, _at) in enumerate(items):
        purpose = purposes.get(code)
        if purpose is None:
            refusals[i] = ConsentError(
                "Unknown purpose.", field="purpose", code="unknown"
            )
        elif granted and purpose.direct_marketing and customer_id in objected:
            refusals[i] = ConsentError(
                "The customer objected to direct marketing: only they can agree to "
                "it again, on their privacy page.",
                field="purpose",
                code="objected",
            )
    return refusals


# An imported event as written: (customer id, purpose id, granted, notice version,
# its time).
_ImportedRow = tuple[Any, int, bool, int, datetime]


def consents_import_bulk(
    *,
    items: Sequence[ImportedConsent],
    created: Collection[Any] = (),
    actor: User | None = None,
) -> list[ImportedConsent]:
    """Record many answers given in an earlier system, as `consent_import` does each
    (source `import`, their original times, the notice then in force; nothing for a
    rerun or when the customer's current answer is newer), in a few statements in the
    caller's transaction, which records the audit event (an import: one per batch).
    The state follows, and each change is told to the webhooks' outbox
    (`consent.changed`). At most one answer per customer and purpose. `created`: the
    customers this transaction inserted, which no one else sees yet and which have no
    answer, objection or opt-in request: they are neither locked nor looked up.
    `actor`: who imported them, recorded on each event as `consent_record` does.
    Returns the items recorded. Raises ConsentError (see `consents_import_refusals`;
    a customer erased meanwhile).
    Lock order: the customers (in id order), then their consent state, then (the
    caller's) audit chain."""
    if not items:
        return []
    purposes = {p.code: p for p in purpose_list_active()}
    if any(item[1] not in purposes for item in items):
        raise ConsentError("Unknown purpose.", field="purpose", code="unknown")
    created = set(created)
    old = [item for item in items if item[0] not in created]
    old_ids = {item[0] for item in old}
    latest: dict[tuple[Any, int], datetime] = {}
    if old:
        refusals = consents_import_refusals(items=old)
        if refusals:
            raise next(iter(refusals.values()))
        # Under these locks the ledger cannot move for them: what is read next stands.
        erased = customers_lock_bulk(customer_ids=old_ids)
        if len(erased) < len(old_ids) or any(erased.values()):
            raise ConsentError("This customer was erased.", field="customer")
        # The newest answer per customer and purpose (by id, as `consent_import` reads
        # it): an import never overrides a newer word. A rerun's own event is such a
        # word (its time equals the answer's), so no second query looks for it.
        latest = _latest_answers(
            customer_ids=old_ids, purpose_ids={purposes[item[1]].pk for item in old}
        )
    notices = list(
        PrivacyNotice.objects.filter(published_at__isnull=False)
        .order_by("-version")
        .values_list("version", "effective_at")
    )
    now = timezone.now()
    recorded: list[ImportedConsent] = []
    rows: list[_ImportedRow] = []
    for item in items:
        customer_id, code, granted, at = item
        purpose = purposes[code]
        newest = latest.get((customer_id, purpose.pk))
        if newest is not None and newest >= at:
            continue
        # The notice in force then, as `notice_current(at=...)` picks it.
        version = next((v for v, effective in notices if effective <= at), 0)
        recorded.append(item)
        rows.append((customer_id, purpose.pk, granted, version, at))
    if not rows:
        return []
    _imported_write(rows, now=now, created=created, actor_id=getattr(actor, "pk", None))
    granted_by_purpose: dict[int, list[Any]] = {}
    for customer_id, purpose_id, granted, _version, _at in rows:
        if granted and customer_id in old_ids:
            granted_by_purpose.setdefault(purpose_id, []).append(customer_id)
    for purpose_id, ids in granted_by_purpose.items():
        OptInRequest.objects.filter(
            customer_id__in=ids, purpose_id=purpose_id, confirmed_at__isnull=True
        ).update(expires_at=now)
    events_emit_bulk(
        type="consent.changed",
        items=(
            (
                customer_id,
                {
                    "purpose": code,
                    "granted": granted,
                    "source": ConsentSource.IMPORT,
                    "notice_version": version,
                    "at": at.isoformat(),
                },
            )
            for (customer_id, code, granted, at), (*_, version, _at) in zip(
                recorded, rows, strict=True
            )
        ),
    )
    return recorded


def _latest_answers(
    *, customer_ids: Collection[Any], purpose_ids: Collection[int]
) -> dict[tuple[Any, int], datetime]:
    """The time of the newest event (by id) per customer and purpose: on PostgreSQL
    with DISTINCT ON, elsewhere (SQLite under `make run`) the first row per pair of
    the same ordered query."""
    events = (
        ConsentEvent.objects.filter(
            customer_id__in=customer_ids, purpose_id__in=purpose_ids
        )
        .order_by("customer_id", "purpose_id", "-id")
        .values_list("customer_id", "purpose_id", "created_at")
    )
    if connection.vendor == "postgresql":
        events = events.distinct("customer_id", "purpose_id")
    latest: dict[tuple[Any, int], datetime] = {}
    for customer_id, purpose_id, created_at in events:
        latest.setdefault((customer_id, purpose_id), created_at)
    return latest


def _imported_write(
    rows: list[_ImportedRow],
    *,
    now: datetime,
    created: Collection[Any] = (),
    actor_id: int | None = None,
) -> None:
    """Insert imported events and move the state to them (customers in `created`
    have none yet). On PostgreSQL by COPY from tuples, with an upsert for the state
    of the others: Django's `bulk_create`, and a model instance per event, cost more
    than the database took to run them (bench/import.py)."""
    if connection.vendor != "postgresql":
        events = [
            ConsentEvent(
                customer_id=customer_id,
                purpose_id=purpose_id,
                granted=granted,
                notice_version=version,
                source=ConsentSource.IMPORT,
                created_at=at,
                actor_id=actor_id,
            )
            for customer_id, purpose_id, granted, version, at in rows
        ]
        ConsentEvent.objects.bulk_create(events)
        ConsentState.objects.bulk_create(
            [
                ConsentState(
                    customer_id=event.customer_id,
                    purpose_id=event.purpose_id,
                    granted=event.granted,
                    notice_version=event.notice_version,
                    source=event.source,
                    updated_at=now,
                    last_event_id=event.pk,
                )
                for event in events
            ],
            update_conflicts=True,
            unique_fields=["customer", "purpose"],
            update_fields=list(_STATE_UPDATED),
        )
        return
    customer_ids, purpose_ids, granted, versions, _times = (
        list(column) for column in zip(*rows, strict=True)
    )
    source = ConsentSource.IMPORT.value
    with server_cursor() as cursor:
        # Ids drawn first, in order, so the events go in by COPY (psycopg's C code
        # encodes the rows: arrays were dumped element by element in Python).
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) "
            "FROM generate_series(1, %s)",
            [ConsentEvent._meta.db_table, len(rows)],
        )
        event_ids = sorted(pk for (pk,) in cursor.fetchall())
    rows_copy(
        ConsentEvent,
        columns=[
            *("id", "customer", "purpose", "granted", "notice_version", "created_at")
        ],
        rows=[(pk, *row) for pk, row in zip(event_ids, rows, strict=True)],
        constants={"source": source, "evidence_hash": "", "actor": actor_id},
    )
    new = [i for i, customer_id in enumerate(customer_ids) if customer_id in created]
    rows_copy(
        ConsentState,
        columns=["customer", "purpose", "granted", "notice_version", "last_event_id"],
        rows=[
            (customer_ids[i], purpose_ids[i], granted[i], versions[i], event_ids[i])
            for i in new
        ],
        constants={"source": source, "updated_at": now},
    )
    old = [
        i for i, customer_id in enumerate(customer_ids) if customer_id not in created
    ]
    if not old:
        return

    def pick(column: list[Any]) -> list[Any]:
        return [column[i] for i in old]

    with server_cursor() as cursor:
        updates = ", ".join(f"{name} = EXCLUDED.{name}" for name in _STATE_UPDATED)
        cursor.execute(
            f'INSERT INTO "{ConsentState._meta.db_table}" (customer_id, purpose_id, '  # noqa: S608  # nosec B608
            "granted, notice_version, source, updated_at, last_event_id) "
            "SELECT c, p, g, v, %b, %b, e FROM unnest(%b::uuid[], %b::bigint[], "
            "%b::boolean[], %b::integer[], %b::bigint[]) "
            "AS u(c, p, g, v, e) "
            f"ON CONFLICT (customer_id, purpose_id) DO UPDATE SET {updates}",
            [
                source,
                now,
                pick(customer_ids),
                pick(purpose_ids),
                pick(granted),
                pick(versions),
                pick(event_ids),
            ],
        )


_STATE_UPDATED = ("granted", "notice_version", "source", "updated_at", "last_event_id")


@transaction.atomic
def consent_import(
    *,
    actor: User | None,
    customer: Customer,
    purpose_code: str,
    granted: bool,
    at: datetime,
) -> ConsentEvent | None:
    """Record an answer given in an earlier system, at its original time, with source
    `import`. None when it was imported already (a rerun) or when the customer's
    current answer is newer (the newer word stands). Raises ConsentError."""
    purpose = _purpose(purpose_code)
    if _customer_lock(customer) is not None:
        raise ConsentError("This customer was erased.", field="customer")
    if ConsentEvent.objects.filter(
        customer=customer,
        purpose=purpose,
        granted=granted,
        source=ConsentSource.IMPORT,
        created_at=at,
    ).exists():
        return None
    latest = (
        ConsentEvent.objects.filter(customer=customer, purpose=purpose)
        .order_by("-id")
        .values_list("created_at", flat=True)
        .first()
    )
    if latest is not None and latest >= at:
        return None
    return consent_record(
        actor=actor,
        customer=customer,
        purpose_code=purpose_code,
        granted=granted,
        source=ConsentSource.IMPORT,
        at=at,
    )


def consent_withdraw(
    *,
    actor: User | None,
    customer: Customer,
    purpose_code: str,
    source: str,
    evidence: str = "",
    reason: str = "",
) -> ConsentEvent:
    """Withdraw a purpose, as easily as it was given. Raises ConsentError."""
    event = consent_record(
        actor=actor,
        customer=customer,
        purpose_code=purpose_code,
        granted=False,
        source=source,
        evidence=evidence,
        reason=reason,
    )
    OptInRequest.objects.filter(
        customer=customer, purpose=event.purpose, confirmed_at__isnull=True
    ).update(expires_at=event.created_at)
    return event


@transaction.atomic
def consent_object_to_marketing(
    *,
    actor: User | None,
    customer: Customer,
    request_id: UUID | None = None,
    evidence: str = "",
) -> list[ConsentEvent]:
    """The customer objects to direct marketing (GDPR art. 21(2), (3)): each
    direct-marketing purpose granted or awaiting its confirmation link is withdrawn
    in the ledger (source `objection`, with the customer's `evidence` when they
    objected themselves; none for a purpose never granted), and from then on only the
    customer can grant any direct-marketing purpose again (`_objection_check`); GPC
    and unsubscribe links work as before. A second objection withdraws again.
    Returns the withdrawals. Audited.
    Lock order: the customer, then their consent state and open opt-in requests (all
    of them, before the first audit event), then the audit chain. Raises ConsentError
    (erased)."""
    if _customer_lock(customer) is not None:
        raise ConsentError("This customer was erased.", field="customer")
    now = timezone.now()
    MarketingObjection.objects.get_or_create(
        customer_id=customer.pk,
        defaults={"objected_at": now, "request_id": request_id},
    )
    purposes = list(purpose_list_direct_marketing())
    # Every lock before the first audit event (each withdrawal audits as it goes):
    # the customer's state rows of these purposes, then their open opt-in requests.
    # After the audit chain the withdrawals only change rows held already or insert.
    granted = {
        purpose_id
        for purpose_id, is_granted in ConsentState.objects.select_for_update(
            no_key=True
        )
        .filter(customer_id=customer.pk, purpose__in=purposes)
        .order_by("pk")
        .values_list("purpose_id", "granted")
        if is_granted
    }
    pending = {
        purpose_id
        for purpose_id, expires_at in OptInRequest.objects.select_for_update(
            no_key=True
        )
        .filter(
            customer_id=customer.pk, purpose__in=purposes, confirmed_at__isnull=True
        )
        .order_by("pk")
        .values_list("purpose_id", "expires_at")
        if expires_at > now
    }
    events = [
        consent_withdraw(
            actor=actor,
            customer=customer,
            purpose_code=purpose.code,
            source=ConsentSource.OBJECTION,
            evidence=evidence,
        )
        for purpose in purposes
        if purpose.pk in granted | pending
    ]
    audit.record(
        actor=actor,
        action="consent.marketing_objected",
        target=customer,
        details={
            "purposes": [event.purpose.code for event in events],
            "request": str(request_id) if request_id else None,
        },
    )
    return events


# Double opt-in --------------------------------------------------------------------


@transaction.atomic
def opt_in_request(
    *, customer: Customer, purpose: Purpose, requested: str | None = None
) -> OptInRequest:
    """Record a pending grant and email the customer a signed, expiring link, in
    `customer_language` (`requested`: the language of the customer's own request;
    None when staff asked)."""
    now = timezone.now()
    request = OptInRequest.objects.create(
        customer=customer,
        purpose=purpose,
        created_at=now,
        expires_at=now + timedelta(hours=settings.AMANAH_OPT_IN_HOURS),
    )
    email = customer.email
    # The whole email in one language: the customer's (customer_language), or the
    # one the purpose's texts are written in. The link carries it (a code, no PII):
    # the page it opens is in the same language.
    text = purpose_text(purpose, customer_language(customer, requested=requested))
    token = signing.dumps([request.pk, text.language], salt=OPT_IN_SALT)
    link = public_url("portal:opt-in-confirm", args=[token])
    audit.record(
        actor=customer.user,
        action="consent.opt_in_requested",
        target=customer,
        details={"purpose": purpose.code, "request": request.pk},
    )

    def send() -> None:
        with translation.override(text.language):
            send_mail(
                subject=gettext("Please confirm: %(purpose)s") % {"purpose": text.name},
                message=_paragraphs(
                    gettext("You asked us to turn this on: %(purpose)s.")
                    % {"purpose": text.name},
                    gettext(
                        "Confirm within %(hours)s hours: open this link and press "
                        '"%(button)s":'
                    )
                    % {
                        "hours": settings.AMANAH_OPT_IN_HOURS,
                        "button": gettext("Yes, confirm"),
                    }
                    + f"\n{link}",
                    gettext(
                        "If this was not you, ignore this message: nothing changes."
                    ),
                ),
                from_email=None,
                # Without an address (erased, or never given) nothing is sent.
                recipient_list=[email] if email else [],
            )

    transaction.on_commit(send)
    return request


def _paragraphs(*texts: str) -> str:
    return "\n\n".join(texts)


def _opt_in_token_read(token: str) -> tuple[Any, str]:
    """The request id and the email's language a confirmation link names (links
    sent before the language was in them name only the id). Raises BadSignature."""
    value = signing.loads(token, salt=OPT_IN_SALT)
    if isinstance(value, list) and len(value) == 2:
        return value[0], str(value[1])
    return value, ""


def opt_in_confirm(*, token: str, evidence: str = "") -> ConsentEvent:
    """Confirm a pending grant from its link. Raises TokenInvalid, TokenExpired."""
    try:
        request_id, _language = _opt_in_token_read(token)
    except signing.BadSignature:
        raise TokenInvalid(gettext("This confirmation link is not valid.")) from None
    request = (
        OptInRequest.objects.select_related("customer", "purpose")
        .filter(pk=request_id)
        .first()
    )
    if request is None:
        raise TokenInvalid(gettext("This confirmation link is not valid."))
    if request.confirmed_at is not None:
        raise TokenExpired(
            gettext("This link was already used: your choice is recorded.")
        )
    if request.expires_at <= timezone.now():
        raise TokenExpired(
            gettext("This confirmation link has expired. Ask for a new one.")
        )
    with transaction.atomic():
        _customer_lock(request.customer)
        # Used once, even when the link is opened twice at the same moment: the
        # second confirmation waits for the customer's lock, then finds it used.
        confirmed = OptInRequest.objects.filter(
            pk=request.pk, confirmed_at__isnull=True
        ).update(confirmed_at=timezone.now())
        if not confirmed:
            raise TokenExpired(
                gettext("This link was already used: your choice is recorded.")
            )
        return consent_record(
            actor=request.customer.user,
            customer=request.customer,
            purpose_code=request.purpose.code,
            granted=True,
            source=ConsentSource.DOUBLE_OPT_IN,
            evidence=evidence,
        )


def opt_in_confirmed(*, token: str) -> bool:
    """Whether this confirmation link was used already (its page then says so
    instead of asking again). False for a link that is not valid: confirming it
    says why."""
    try:
        request_id, _language = _opt_in_token_read(token)
    except signing.BadSignature:
        return False
    return OptInRequest.objects.filter(
        pk=request_id, confirmed_at__isnull=False
    ).exists()


class OptInLinkState:
    """What a confirmation link's page says (`opt_in_link_state`)."""

    INVALID = "invalid"  # not a link we sent
    OPEN = "open"  # can be confirmed: the page offers the button
    USED = "used"  # this link confirmed the choice
    CONFIRMED_ELSEWHERE = "confirmed_elsewhere"  # another (newer) link confirmed it
    REPLACED = "replaced"  # expired, and a newer link was sent since
    EXPIRED = "expired"  # expired (or cancelled by a later choice)


def opt_in_link_state(*, token: str) -> str:
    """Which OptInLinkState a confirmation link is in, so its page says the truth
    (and offers the button only when pressing it can work)."""
    try:
        request_id, _language = _opt_in_token_read(token)
    except signing.BadSignature:
        return OptInLinkState.INVALID
    request = OptInRequest.objects.filter(pk=request_id).first()
    if request is None:
        return OptInLinkState.INVALID
    if request.confirmed_at is not None:
        return OptInLinkState.USED
    others = OptInRequest.objects.filter(
        customer_id=request.customer_id, purpose_id=request.purpose_id
    ).exclude(pk=request.pk)
    if others.filter(confirmed_at__gte=request.created_at).exists():
        return OptInLinkState.CONFIRMED_ELSEWHERE
    if request.expires_at > timezone.now():
        return OptInLinkState.OPEN
    if others.filter(created_at__gt=request.created_at).exists():
        return OptInLinkState.REPLACED
    return OptInLinkState.EXPIRED


def opt_in_language(*, token: str) -> str | None:
    """The language the confirmation email was written in (its page is in it too):
    the one the link names, else (an older link) `customer_language`. None for a
    link that is not valid."""
    try:
        request_id, language = _opt_in_token_read(token)
    except signing.BadSignature:
        return None
    if language_is_known(language):
        return language
    request = (
        OptInRequest.objects.select_related("customer").filter(pk=request_id).first()
    )
    return customer_language(request.customer) if request is not None else None


# Global Privacy Control -----------------------------------------------------------


def consent_apply_gpc(*, customer: Customer, evidence: str = "") -> bool:
    """Honour a `Sec-GPC: 1` signal: withdraw partner sharing, once. A later explicit
    grant by the customer stands. Returns True if it withdrew."""
    purpose = purpose_get_active(code=GPC_PURPOSE)
    if purpose is None:
        return False
    state = ConsentState.objects.filter(customer=customer, purpose=purpose).first()
    already = ConsentEvent.objects.filter(
        customer=customer, purpose=purpose, source=ConsentSource.GPC
    ).exists()
    if state is None or not state.granted or already:
        return False
    consent_withdraw(
        actor=customer.user,
        customer=customer,
        purpose_code=GPC_PURPOSE,
        source=ConsentSource.GPC,
        evidence=evidence,
    )
    return True


# Unsubscribe (RFC 8058) -------------------------------------------------------------


def unsubscribe_token(*, customer_id: UUID | str, purpose_code: str) -> str:
    """A signed, non-guessable token naming a customer id and a purpose (no PII)."""
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign(f"{customer_id}.{purpose_code}")


def unsubscribe_url(*, customer_id: UUID | str, purpose_code: str) -> str:
    token = unsubscribe_token(customer_id=customer_id, purpose_code=purpose_code)
    return public_url("unsubscribe", args=[token])


def unsubscribe_headers(
    *, customer_id: UUID | str, purpose_code: str
) -> dict[str, str]:
    """The List-Unsubscribe headers (RFC 2369, RFC 8058) for a marketing email."""
    url = unsubscribe_url(customer_id=customer_id, purpose_code=purpose_code)
    return {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def unsubscribe_resolve(*, token: str) -> tuple[Customer, Purpose]:
    """The customer and purpose a token names. Raises TokenInvalid."""
    try:
        value = signing.Signer(salt=UNSUBSCRIBE_SALT).unsign(token)
        customer_id, purpose_code = value.split(".", 1)
        customer = customer_get(customer_id=customer_id)
    except (signing.BadSignature, ValueError, NotFound):
        raise TokenInvalid(gettext("This unsubscribe link is not valid.")) from None
    purpose = purpose_get_active(code=purpose_code)
    if purpose is None:
        raise TokenInvalid(gettext("This unsubscribe link is not valid."))
    return customer, purpose


def unsubscribe(*, token: str, evidence: str = "") -> tuple[Purpose, bool]:
    """One-click unsubscribe. Idempotent: a repeat changes nothing. Returns the purpose
    and whether anything changed. Raises TokenInvalid."""
    customer, purpose = unsubscribe_resolve(token=token)
    state = ConsentState.objects.filter(customer=customer, purpose=purpose).first()
    if state is None or not state.granted:
        return purpose, False
    consent_withdraw(
        actor=None,
        customer=customer,
        purpose_code=purpose.code,
        source=ConsentSource.UNSUBSCRIBE_LINK,
        evidence=evidence,
    )
    return purpose, True


# Notices ------------------------------------------------------------------------------


@transaction.atomic
def notice_acknowledge(*, customer: Customer, notice: PrivacyNotice) -> None:
    NoticeAcknowledgement.objects.get_or_create(
        customer=customer, notice=notice, defaults={"acknowledged_at": timezone.now()}
    )


@transaction.atomic
def notice_publish(*, actor: User, notice: PrivacyNotice) -> PrivacyNotice:
    """Publish a notice version: material changes make older grants need renewing,
    and affected customers are emailed a summary in batches (Celery)."""
    from apps.consent.tasks import notice_announce_task

    notice = PrivacyNotice.objects.select_for_update(no_key=True).get(pk=notice.pk)
    if notice.published_at is not None:
        raise ConsentError("This notice is already published.")
    notice.published_at = timezone.now()
    notice.save(update_fields=["published_at"])
    material = list(
        NoticeChange.objects.filter(notice=notice, material=True).values_list(
            "purpose_id", flat=True
        )
    )
    Purpose.objects.filter(pk__in=material).update(min_notice_version=notice.version)
    audit.record(
        actor=actor,
        action="notice.published",
        target=notice,
        details={"version": notice.version, "material_purposes": len(material)},
    )
    transaction.on_commit(lambda: notice_announce_task.delay(notice.pk))
    return notice


def notice_affected_customer_ids(*, notice: PrivacyNotice) -> list[UUID]:
    """Customers holding a consent answer for a purpose the notice changes."""
    purposes = NoticeChange.objects.filter(notice=notice).values("purpose")
    return list(
        ConsentState.objects.filter(purpose__in=purposes)
        .exclude(customer_id__in=customer_ids_erased())
        .order_by("customer_id")
        .values_list("customer_id", flat=True)
        .distinct()
    )


def notice_announce_batch(*, notice_id: int, customer_ids: Sequence[UUID | str]) -> int:
    """Email the notice summary to these customers, skipping those already told.
    Returns how many were sent."""
    from django.core.mail import EmailMessage, get_connection

    from apps.consent.models import NoticeDelivery
    from apps.crypto.keys import data_keys_preload, key_scope

    notice = PrivacyNotice.objects.get(pk=notice_id)
    done = set(
        NoticeDelivery.objects.filter(
            notice=notice, customer_id__in=customer_ids
        ).values_list("customer_id", flat=True)
    )
    customers = [
        c
        for c in customers_not_erased().filter(pk__in=customer_ids)
        if c.pk not in done
    ]
    texts: dict[str, NoticeText] = {}
    sent = 0
    with key_scope(), get_connection() as connection:
        data_keys_preload(c.data_key_id for c in customers)
        for customer in customers:
            if not customer.email:
                continue
            # One whole language: the customer's, or the one the notice is written in.
            wanted = customer_language(customer)
            if wanted not in texts:
                texts[wanted] = notice_text(notice, wanted)
            text = texts[wanted]
            with translation.override(text.language):
                message = EmailMessage(
                    subject=gettext(
                        "We updated our privacy notice (version %(version)s)"
                    )
                    % {"version": notice.version},
                    body=_paragraphs(
                        text.summary,
                        gettext("What changed:") + "\n" + _notice_changes(text),
                        gettext("Review your choices at %(url)s")
                        % {"url": public_url("portal:consents")},
                    ),
                    to=[customer.email],
                    connection=connection,
                )
                # An address refused for good is skipped: the others must not wait
                # behind it. A passing failure raises: the task tries the batch again.
                taken = send_unless_refused(
                    message,
                    event="consent.notice_address_refused",
                    notice=notice_id,
                    customer=str(customer.pk),
                )
            if not taken:
                continue
            NoticeDelivery.objects.create(
                notice=notice, customer=customer, sent_at=timezone.now()
            )
            sent += 1
    logger.info("consent.notice_batch_sent", extra={"notice": notice_id, "sent": sent})
    return sent


def _notice_changes(text: NoticeText) -> str:
    """The notice's changes, one line each, in the active language."""
    lines = []
    for change in text.changes:
        line = f"- {change.purpose_name}: {change.description or gettext('updated')}"
        if change.change.material:
            line += " " + gettext("(we will ask for your agreement again)")
        lines.append(line)
    return "\n".join(lines)


def consent_events_delete_bulk(*, event_ids: list[int]) -> int:
    """Dispose of old ledger rows (retention). The ledger refuses deletes except in a
    transaction that declared itself a disposal."""
    declare_disposal()
    return ConsentEvent.objects.filter(pk__in=event_ids).delete()[0]
