"""Reads of consent: purposes, notices, a customer's state and history, audiences."""

import csv
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import connection
from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
)
from django.utils import timezone

from apps.consent.models import (
    ConsentEvent,
    ConsentState,
    NoticeAcknowledgement,
    NoticeChange,
    OptInRequest,
    PrivacyNotice,
    Purpose,
)
from apps.consent.receipts import receipt_sign
from apps.core.db import server_cursor
from apps.core.i18n import language_choose, texts_in_language
from apps.core.links import public_url
from apps.core.replica import read_connection
from apps.customers.models import Customer
from apps.customers.selectors import (
    customer_ids_erased,
    customer_ids_erased_sql,
    customer_ids_restricted,
    customer_ids_restricted_sql,
)


def purpose_list_active() -> QuerySet[Purpose]:
    return Purpose.objects.filter(active=True)


def purpose_get_active(*, code: str) -> Purpose | None:
    return Purpose.objects.filter(code=code, active=True).first()


def purpose_list_direct_marketing() -> QuerySet[Purpose]:
    """The active purposes that are direct marketing (`Purpose.direct_marketing`)."""
    return purpose_list_active().filter(direct_marketing=True)


# Staff-written texts in the customer's language ---------------------------------------
# `name`/`description` (title/summary/body) are the English source; `translations`
# holds the other languages, each whole (models.translations_check). A customer gets
# one whole language per purpose and per notice: theirs if written, else English,
# always there (apps/core/i18n.language_choose). `language` says which, for `lang=`.


@dataclass(frozen=True)
class PurposeText:
    name: str
    description: str
    language: str


def _languages(translations: Mapping[str, Any]) -> set[str]:
    return {settings.LANGUAGE_CODE, *translations}


def purpose_text(purpose: Purpose, language: str | None) -> PurposeText:
    """The purpose's name and description in one whole language: `language` if
    written, else English (the source)."""
    texts, chosen = texts_in_language(
        source={"name": purpose.name, "description": purpose.description},
        translations=purpose.translations,
        language=language,
    )
    return PurposeText(texts["name"], texts["description"], chosen)


@dataclass(frozen=True)
class NoticeChangeText:
    change: NoticeChange
    purpose_name: str
    # Blank when staff wrote none (the page says "updated" in its own words).
    description: str


@dataclass(frozen=True)
class NoticeText:
    notice: PrivacyNotice
    title: str
    summary: str
    body: str
    changes: list[NoticeChangeText]
    language: str


def notice_text(notice: PrivacyNotice, language: str | None) -> NoticeText:
    """The notice with its changes in one whole language: title, summary, body,
    every change's description and the purposes' names all in `language` if every
    one of them is written in it, else all in English (the source)."""
    changes = list(
        NoticeChange.objects.filter(notice=notice)
        .select_related("purpose")
        .order_by("pk")
    )
    available = _languages(notice.translations or {})
    for change in changes:
        available &= _languages(change.purpose.translations or {})
        if change.description:
            available &= _languages(change.translations or {})
    chosen = language_choose(available=available, wanted=[language])
    source = chosen == settings.LANGUAGE_CODE
    texts = {} if source else notice.translations[chosen]
    return NoticeText(
        notice=notice,
        title=notice.title if source else texts["title"],
        summary=notice.summary if source else texts["summary"],
        body=notice.body if source else texts["body"],
        changes=[
            NoticeChangeText(
                change=change,
                purpose_name=purpose_text(change.purpose, chosen).name,
                description=change.description
                if source or not change.description
                else change.translations[chosen]["description"],
            )
            for change in changes
        ],
        language=chosen,
    )


def notice_current(*, at: datetime | None = None) -> PrivacyNotice | None:
    """The notice in force: the newest published one whose effective date has come."""
    return (
        PrivacyNotice.objects.filter(
            published_at__isnull=False, effective_at__lte=at or timezone.now()
        )
        .order_by("-version")
        .first()
    )


def notice_current_version() -> int:
    notice = notice_current()
    return notice.version if notice else 0


@dataclass
class PurposeView:
    purpose: Purpose
    state: ConsentState | None
    pending: OptInRequest | None

    @property
    def granted(self) -> bool:
        """Granted, and under a notice at least as new as the purpose's last material
        change: an older grant needs renewing and does not count."""
        return bool(
            self.state
            and self.state.granted
            and self.state.notice_version >= self.purpose.min_notice_version
        )

    @property
    def needs_renewal(self) -> bool:
        return bool(self.state and self.state.granted and not self.granted)


def consent_overview_for_customer(*, customer: Customer) -> list[PurposeView]:
    """Each active purpose with the customer's current state and any pending opt-in."""
    states = {s.purpose_id: s for s in ConsentState.objects.filter(customer=customer)}
    now = timezone.now()
    pending = {
        r.purpose_id: r
        for r in OptInRequest.objects.filter(
            customer=customer, confirmed_at__isnull=True, expires_at__gt=now
        ).order_by("created_at")
    }
    return [
        PurposeView(purpose=p, state=states.get(p.pk), pending=pending.get(p.pk))
        for p in purpose_list_active()
    ]


def consent_history_for_customer(*, customer: Customer) -> QuerySet[ConsentEvent]:
    return (
        ConsentEvent.objects.filter(customer=customer)
        .select_related("purpose")
        .order_by("-created_at", "-pk")
    )


def consent_receipts_for_customer(*, customer: Customer) -> dict[str, Any]:
    """Every consent event of the customer as signed receipts (JSON-ready,
    apps/consent/receipts.py), and where the public keys that verify them are."""
    return {
        "customer": str(customer.pk),
        "generated_at": timezone.now().isoformat(),
        "keys": public_url("/.well-known/amanah-signing-keys.json"),
        "receipts": [
            receipt_sign(event=event, customer=customer)
            for event in consent_history_for_customer(customer=customer).order_by(
                "created_at", "pk"
            )
        ],
    }


def consent_state_replay_matches(*, customer: Customer) -> bool:
    """True when the state table equals a replay of the events (tests, checks)."""
    replay: dict[int, bool] = {}
    for event in ConsentEvent.objects.filter(customer=customer).order_by("pk"):
        replay[event.purpose_id] = event.granted
    state = dict(
        ConsentState.objects.filter(customer=customer).values_list(
            "purpose_id", "granted"
        )
    )
    return replay == state


def consent_states_changed_since(*, since: datetime | None) -> QuerySet[ConsentState]:
    """Every customer's current answer per purpose (purpose joined; `customer_id`),
    changed at or after `since` (all without it), by `updated_at`: a grant, a
    withdrawal (unsubscribe link, GPC, staff, the customer, an objection), a confirmed
    double opt-in.
    Unordered: the caller orders and pages by ("updated_at", "pk") (index
    consent_state_updated).

    Each row also says, as of now, whether a grant counts (`grant_counts`: not under
    a notice older than the purpose's last material change), whether its customer
    is erased (`customer_erased`) and whether their data is restricted
    (`customer_restricted`, GDPR art. 18); such a customer is in no audience. None
    moves `updated_at`: publishing a material notice does not touch the answers, and
    an erasure or restriction leaves them as they were (the customer's is in
    `customers.selectors.customers_changed_since`). A customer deleted by disposal
    takes their answers with them."""
    states = ConsentState.objects.select_related("purpose").annotate(
        grant_counts=ExpressionWrapper(
            Q(granted=True, notice_version__gte=F("purpose__min_notice_version")),
            output_field=BooleanField(),
        ),
        customer_erased=ExpressionWrapper(
            Q(customer_id__in=customer_ids_erased()), output_field=BooleanField()
        ),
        customer_restricted=ExpressionWrapper(
            Q(customer_id__in=customer_ids_restricted()), output_field=BooleanField()
        ),
    )
    if since is not None:
        states = states.filter(updated_at__gte=since)
    return states


def notice_pending_review(*, customer: Customer) -> PrivacyNotice | None:
    """The newest notice in force with a material change the customer has not seen."""
    current = notice_current()
    if current is None:
        return None
    material = (
        NoticeChange.objects.filter(material=True, notice__published_at__isnull=False)
        .filter(notice__effective_at__lte=timezone.now())
        .exclude(
            notice__in=NoticeAcknowledgement.objects.filter(customer=customer).values(
                "notice"
            )
        )
        .select_related("notice")
        .order_by("-notice__version")
        .first()
    )
    return material.notice if material else None


# The audiences leave out erased customers with `NOT IN` the customers app's subquery
# of erased ids (`customer_ids_erased`): they are few and indexed apart, so a hashed
# NOT IN is far cheaper than joining every customer row. Restricted customers (GDPR
# art. 18) go the same way (`customer_ids_restricted`, active restrictions only,
# indexed apart too).


def audience_granted_filter(purpose: Purpose) -> Q:
    return Q(
        purpose=purpose, granted=True, notice_version__gte=purpose.min_notice_version
    )


def consent_granted_customer_ids(*, purpose: Purpose) -> QuerySet:
    """The ids of the customers whose grant for the purpose counts now, as a subquery
    (`values("customer_id")`); erased and restricted ones too: the caller's customers
    leave them out where it is an audience (a change notice tells them too)."""
    return ConsentState.objects.filter(audience_granted_filter(purpose)).values(
        "customer_id"
    )


def consent_granted_for_customer(*, customer: Customer, purpose: Purpose) -> bool:
    """Whether the customer's grant for the purpose counts now."""
    return ConsentState.objects.filter(
        audience_granted_filter(purpose), customer=customer
    ).exists()


def audience_allowed_ids(*, purpose: Purpose, customer_ids: list[UUID]) -> list[UUID]:
    """Which of these customers may be contacted for the purpose right now (not
    erased, not restricted)."""
    if connection.vendor == "postgresql":
        # Up to 100,000 ids: one binary array parameter, not 100,000 quoted literals.
        erased, erased_params = customer_ids_erased_sql()
        restricted, restricted_params = customer_ids_restricted_sql()
        with server_cursor() as cursor:
            cursor.execute(
                "SELECT customer_id FROM consent_consentstate WHERE purpose_id = %b "  # noqa: S608  # nosec B608
                "AND granted AND notice_version >= %b AND customer_id = ANY(%b) "
                f"AND customer_id NOT IN ({erased}) "
                f"AND customer_id NOT IN ({restricted})",
                [
                    purpose.pk,
                    purpose.min_notice_version,
                    list(customer_ids),
                    *erased_params,
                    *restricted_params,
                ],
            )
            return [row[0] for row in cursor.fetchall()]
    return list(
        ConsentState.objects.filter(audience_granted_filter(purpose))
        .filter(customer_id__in=customer_ids)
        .exclude(customer_id__in=customer_ids_erased())
        .exclude(customer_id__in=customer_ids_restricted())
        .values_list("customer_id", flat=True)
    )


def audience_queryset(*, purpose: Purpose) -> QuerySet[ConsentState]:
    """Everyone who may be contacted for the purpose (not erased, not restricted),
    by customer id."""
    return (
        ConsentState.objects.filter(audience_granted_filter(purpose))
        .exclude(customer_id__in=customer_ids_erased())
        .exclude(customer_id__in=customer_ids_restricted())
        .order_by("customer_id")
    )


def audience_copy_sql(*, purpose: Purpose) -> tuple[str, list[Any]]:
    """The same audience as a COPY statement (streamed as CSV on PostgreSQL)."""
    erased, erased_params = customer_ids_erased_sql()
    restricted, restricted_params = customer_ids_restricted_sql()
    return (
        "COPY (SELECT customer_id FROM consent_consentstate WHERE purpose_id = %s "  # noqa: S608  # nosec B608
        "AND granted AND notice_version >= %s "
        f"AND customer_id NOT IN ({erased}) "
        f"AND customer_id NOT IN ({restricted})) "
        "TO STDOUT WITH (FORMAT csv)",
        [
            purpose.pk,
            purpose.min_notice_version,
            *erased_params,
            *restricted_params,
        ],
    )


def audience_csv_chunks(*, purpose: Purpose) -> Iterator[bytes | str]:
    """The same audience as CSV, one customer id a line, in chunks of about 64 KiB to
    stream. On PostgreSQL the server writes it (`audience_copy_sql`, on the driver's
    own cursor: no row is parsed in Python); its messages, one a line, are gathered
    into chunks, so the response passes a few hundred pieces on, not one per
    customer. Elsewhere `audience_queryset`. Inside `replica_reads` (or a
    `replica_stream`) the COPY runs on the replica."""
    reads = read_connection()
    if reads.vendor == "postgresql":
        sql, params = audience_copy_sql(purpose=purpose)
        with reads.cursor() as cursor, cursor.cursor.copy(sql, params) as copy:
            pending = bytearray()
            for line in copy:
                pending += line
                if len(pending) > 65_536:
                    yield bytes(pending)
                    pending.clear()
            if pending:
                yield bytes(pending)
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    ids = audience_queryset(purpose=purpose).values_list("customer_id", flat=True)
    for customer_id in ids.iterator(chunk_size=10_000):
        writer.writerow([customer_id])
        if buffer.tell() > 65_536:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


# Disposal (apps.retention): the ledger's rows, and when each one's clock starts (the
# withdrawal of the consent it records).


def consent_event_queryset() -> QuerySet[ConsentEvent]:
    return ConsentEvent.objects.all()


def consent_event_withdrawn_filter(*, before: datetime) -> Q:
    """The condition on consent events whose consent is withdrawn now, and was last
    changed at or before `before`."""
    withdrawn = ConsentState.objects.filter(
        customer=OuterRef("customer"),
        purpose=OuterRef("purpose"),
        granted=False,
        updated_at__lte=before,
    )
    return Q(Exists(withdrawn))


def consent_event_counts_by_withdrawal(
    *,
    windows: Mapping[str, tuple[datetime | None, datetime]],
    customers: QuerySet | None = None,
) -> dict[str, tuple[int, int]]:
    """Per window `(after, upto]` (no `after`: any time up to `upto`): the consent
    events whose consent is withdrawn and was last changed within it, and how many of
    those are the events of `customers` (a queryset of customer ids; 0 without it).

    The ORM can only ask that per event (a correlated EXISTS in every window, over
    millions of events); one join of the withdrawn states to their events answers
    every window in one pass.
    """
    of_customers, inner_params = "", ()
    if customers is not None:
        # Unordered: an ORDER BY means nothing in `IN (...)`, and SQLite refuses one
        # inside the parts of a UNION.
        inner, inner_params = customers.order_by().query.sql_with_params()
        of_customers = f"e.customer_id IN ({inner})"
    columns: list[str] = []
    params: list[Any] = []
    for after, upto in windows.values():
        within = "s.updated_at <= %s"
        bounds: list[Any] = [upto]
        if after is not None:
            within += " AND s.updated_at > %s"
            bounds.append(after)
        columns.append(f"count(*) FILTER (WHERE {within})")
        params.extend(bounds)
        if customers is not None:
            columns.append(f"count(*) FILTER (WHERE {within} AND {of_customers})")
            params.extend([*bounds, *inner_params])
    # Table names from model metadata, the customers' statement from the ORM; every
    # value is a bound parameter.
    sql = (
        f"SELECT {', '.join(columns)} "  # noqa: S608  # nosec B608
        f"FROM {ConsentState._meta.db_table} s "
        f"JOIN {ConsentEvent._meta.db_table} e "
        "ON e.customer_id = s.customer_id AND e.purpose_id = s.purpose_id "
        "WHERE NOT s.granted AND s.updated_at <= %s"
    )
    params.append(max(upto for _, upto in windows.values()))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = list(cursor.fetchone())
    width = 2 if customers is not None else 1
    return {
        name: (row[i * width], row[i * width + 1] if customers is not None else 0)
        for i, name in enumerate(windows)
    }


def consent_event_counts_withdrawn_by_day(
    *,
    since: datetime | None,
    before: datetime,
    customers: QuerySet | None = None,
) -> dict[date, int]:
    """Per UTC day, the consent events whose consent is withdrawn and was last
    changed that day, within [`since`, `before`) (no `since`: from the first); only
    the events of `customers` (a queryset of customer ids) if given. Both bounds and
    the customers narrow the withdrawn states read (their indexes on `updated_at` and
    on customer and purpose), then their events. PostgreSQL (retention's clock
    counts)."""
    sql, params = _withdrawn_events_sql(
        "(s.updated_at AT TIME ZONE 'UTC')::date, count(*)",
        since=since,
        before=before,
        customers=customers,
    )
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} GROUP BY 1", params)
        return {day: count for day, count in cursor.fetchall()}


def consent_event_count_withdrawn_sql(
    *,
    since: datetime | None,
    before: datetime,
    customers: QuerySet | None = None,
) -> tuple[str, list[Any]]:
    """A statement counting the consent events whose consent is withdrawn and was
    last changed within [`since`, `before`) (no `since`: from the first), only the
    events of `customers` (a queryset of customer ids) if given, as SQL text and its
    parameters: for retention to count many such ranges in one statement. It reads
    only the withdrawn states within the range (or of the customers). PostgreSQL."""
    return _withdrawn_events_sql(
        "count(*)", since=since, before=before, customers=customers
    )


def _withdrawn_events_sql(
    columns: str,
    *,
    since: datetime | None,
    before: datetime,
    customers: QuerySet | None,
) -> tuple[str, list[Any]]:
    """`SELECT columns` over the events of withdrawn consents last changed within
    [`since`, `before`), of `customers` if given (the two selectors above)."""
    where, params = ["NOT s.granted", "s.updated_at < %s"], [before]
    if since is not None:
        where.append("s.updated_at >= %s")
        params.append(since)
    if customers is not None:
        inner, inner_params = customers.order_by().query.sql_with_params()
        where.append(f"s.customer_id IN ({inner})")
        params.extend(inner_params)
    # Table names from model metadata, the customers' statement from the ORM, the
    # columns from the callers above; every value is a bound parameter.
    sql = (
        f"SELECT {columns} "  # noqa: S608  # nosec B608
        f"FROM {ConsentState._meta.db_table} s "
        f"JOIN {ConsentEvent._meta.db_table} e "
        "ON e.customer_id = s.customer_id AND e.purpose_id = s.purpose_id "
        f"WHERE {' AND '.join(where)}"
    )
    return sql, params


def consent_withdrawals_span() -> tuple[datetime, datetime] | None:
    """The first and last time a consent now withdrawn was last changed; None: none
    is withdrawn."""
    span = ConsentState.objects.filter(granted=False).aggregate(
        first=Min("updated_at"), last=Max("updated_at")
    )
    if span["first"] is None:
        return None
    return span["first"], span["last"]
