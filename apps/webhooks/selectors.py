from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery
from django.db.models.expressions import RawSQL

from apps.core.errors import NotFound
from apps.crypto.keys import key_scope
from apps.webhooks.models import (
    ART19_TYPES,
    Delivery,
    DeliveryStatus,
    Endpoint,
    Scope,
)

# The endpoint list counts each status up to this many (an index-only scan of at
# most that many entries per endpoint and status, never the whole outbox).
COUNT_CAP = 10_000


def _count_capped(status: str) -> RawSQL:
    # Raw: Django cannot count a sliced subquery; the table and its index are this
    # app's own (`webhook_by_status`: endpoint, status, id).
    table = Delivery._meta.db_table
    endpoint_table = Endpoint._meta.db_table
    return RawSQL(  # noqa: S611  # nosec B611 - ids and status bound as parameters
        f'SELECT count(*) FROM (SELECT 1 FROM "{table}" d '  # noqa: S608  # nosec B608
        f'WHERE d."endpoint_id" = "{endpoint_table}"."id" AND d."status" = %s '
        "LIMIT %s) capped",
        (status, COUNT_CAP),
    )


def _pending_capped(condition: str) -> RawSQL:
    """Pending deliveries of the endpoint meeting `condition` (SQL on `d`, a
    delivery), counted up to COUNT_CAP."""
    table = Delivery._meta.db_table
    endpoint_table = Endpoint._meta.db_table
    return RawSQL(  # noqa: S611  # nosec B611 - a fixed condition; status and cap bound
        f'SELECT count(*) FROM (SELECT 1 FROM "{table}" d '  # noqa: S608  # nosec B608
        f'WHERE d."endpoint_id" = "{endpoint_table}"."id" AND d."status" = %s '
        f"AND {condition} LIMIT %s) capped",
        (DeliveryStatus.PENDING, COUNT_CAP),
    )


def _held_behind_dead() -> RawSQL:
    # A pending delivery waits while an earlier one of its customer, to the same
    # endpoint, is a dead letter (in order per customer).
    table = Delivery._meta.db_table
    return _pending_capped(
        f'EXISTS (SELECT 1 FROM "{table}" x WHERE x."endpoint_id" = d."endpoint_id" '  # noqa: S608  # nosec B608
        'AND x."customer_id" = d."customer_id" AND x."status" = \'dead\' '
        'AND x."id" < d."id")'
    )


def endpoint_list() -> QuerySet[Endpoint]:
    """Active endpoints, oldest first, with their deliveries counted by status
    (`pending`, `delivered`, `dead`), and among the pending ones those `retrying`
    (failed at least once) and those `held` behind a dead letter of their customer,
    each count up to COUNT_CAP; and the endpoint's `last_response` with its time
    (`last_attempt_at`)."""
    last = Delivery.objects.filter(
        endpoint_id=OuterRef("pk"), last_attempt_at__isnull=False
    ).order_by("-last_attempt_at")
    return (
        Endpoint.objects.filter(active=True)
        .annotate(
            pending=_count_capped(DeliveryStatus.PENDING),
            delivered=_count_capped(DeliveryStatus.DELIVERED),
            dead=_count_capped(DeliveryStatus.DEAD),
            retrying=_pending_capped('d."attempts" > 0'),
            held=_held_behind_dead(),
            last_response=Subquery(last.values("last_response")[:1]),
            last_attempt_at=Subquery(last.values("last_attempt_at")[:1]),
        )
        .order_by("created_at", "pk")
    )


def endpoint_get(*, endpoint_id: Any) -> Endpoint:
    """One active endpoint, its deliveries counted. Raises NotFound."""
    endpoint = endpoint_list().filter(pk=endpoint_id).first()
    if endpoint is None:
        raise NotFound("No such webhook endpoint.")
    return endpoint


def endpoint_find(*, url: str, scope: str) -> Endpoint | None:
    """The active endpoint of this scope with exactly this URL, if any."""
    return Endpoint.objects.filter(
        active=True, scope=scope, url=(url or "").strip()
    ).first()


def endpoint_secret_get(*, endpoint: Endpoint) -> str:
    """The endpoint's signing secret, opened (to show it once, right after it was
    made)."""
    with key_scope():
        return str(
            Endpoint.objects.select_related("data_key").get(pk=endpoint.pk).secret
        )


def delivery_list(
    *, endpoint: Endpoint, status: str | None = None
) -> QuerySet[Delivery]:
    """The endpoint's deliveries, in order (oldest first), with their events."""
    rows = Delivery.objects.filter(endpoint=endpoint).select_related("event")
    if status:
        rows = rows.filter(status=status)
    return rows.order_by("id")


@dataclass(frozen=True)
class PassedOn:
    """An art. 19 event passed on to one recipient."""

    recipient: str
    type: str
    event_id: str
    status: str
    attempts: int
    delivered_at: datetime | None
    created_at: datetime


def art19_passed_on_for_request(*, request_id: Any) -> list[PassedOn]:
    """The erasures and corrections a data request caused, as passed on to each
    recipient (of the inventory, through its endpoint) that had received the
    customer's data, oldest first. Kept whatever became of the endpoint since."""
    rows = (
        Delivery.objects.filter(
            event__request_id=request_id,
            event__type__in=ART19_TYPES,
            endpoint__scope=Scope.RECIPIENTS,
        )
        .select_related("event")
        .order_by("id")
    )
    return [
        PassedOn(
            recipient=name,
            type=row.event.type,
            event_id=row.event_id,
            status=row.status,
            attempts=row.attempts,
            delivered_at=row.delivered_at,
            created_at=row.event.created_at,
        )
        for row in rows
        for name in row.recipients
    ]


def deliveries_pending_count() -> int:
    """How many deliveries wait (due now or later, or held behind a dead letter)."""
    return Delivery.objects.filter(
        status=DeliveryStatus.PENDING, endpoint__active=True
    ).count()
