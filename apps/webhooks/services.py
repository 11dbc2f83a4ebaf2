"""Outbound events: endpoints, the outbox (written in the caller's transaction) and
its delivery, signed as Standard Webhooks do, retried, dead-lettered and replayed.

Lock order (apps/core/db.py):
- emitting inserts events and deliveries in the caller's transaction, which holds the
  customer's row already and has not reached the audit chain yet (emitters emit before
  `audit.record`): each delivery's foreign-key check takes a `KEY SHARE` lock on its
  endpoint at commit, which no endpoint change ever blocks (they lock it `FOR NO KEY
  UPDATE`) and the purge deletes only endpoints inactive for the keep period;
- a delivery batch is claimed in a short transaction of its own (its due rows, `FOR
  UPDATE SKIP LOCKED`, each given this claim's lease id), each item's lease renewed
  in a single statement right before it is sent, sent outside any transaction, and
  its result recorded in another one: the delivery's row (only while the claim is
  still the current one), then the audit chain (a dead letter);
- an endpoint's change: the endpoint, then its deliveries (a delete cancels those not
  delivered), then the audit chain;
- the purge takes no audit lock: finished deliveries, then events, then endpoints
  (each with its data key, destroyed), in short transactions.
"""

import base64
import contextlib
import ipaddress
import json
import logging
import random
import secrets
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from standardwebhooks import Webhook
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import SSLError
from urllib3.util.ssl_match_hostname import CertificateError

from apps.accounts.models import Role, User
from apps.audit import services as audit
from apps.core.errors import Forbidden
from apps.crypto.keys import key_scope
from apps.crypto.services import data_key_create, data_key_destroy
from apps.webhooks.errors import WebhookError
from apps.webhooks.models import (
    ART19_TYPES,
    Delivery,
    DeliveryStatus,
    Endpoint,
    Event,
    EventType,
    Scope,
    event_id_new,
)
from apps.webhooks.recipients import recipient_endpoints_for

logger = logging.getLogger(__name__)

USER_AGENT = "Amanah-Webhooks/1.0"
# Whether any active endpoint exists, in the shared cache: emitting costs nothing
# while none does. A new endpoint sets it (before and after its commit); readers
# only add it, so a reader's older answer never overwrites a creator's.
_ANY_ENDPOINT = "webhooks:any-endpoint"
_ANY_ENDPOINT_SECONDS = 3600
SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret  # nosec B105
# A lease outlives one attempt (its whole deadline) by this much.
LEASE_MARGIN_SECONDS = 30


def _admin_required(actor: User) -> None:
    if getattr(actor, "role", "") != Role.PRIVACY_ADMIN:
        raise Forbidden("Only privacy admins manage webhooks.")


def secret_new() -> str:
    """A signing secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _networks_allowed() -> list[Any]:
    return [
        ipaddress.ip_network(cidr.strip(), strict=False)
        for cidr in settings.AMANAH_WEBHOOK_ALLOWED_NETWORKS
        if cidr.strip()
    ]


def address_allowed(address: str) -> bool:
    """Whether events may go to this IP address: a global one, or one inside
    AMANAH_WEBHOOK_ALLOWED_NETWORKS (on-premises receivers)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if any(ip in network for network in _networks_allowed()):
        return True
    return ip.is_global and not ip.is_multicast


def _resolve(host: str, port: int) -> list[str]:
    """The host's addresses, in the resolver's order (an IP address: itself)."""
    with contextlib.suppress(ValueError):
        return [str(ipaddress.ip_address(host))]
    return list(
        dict.fromkeys(
            str(info[4][0])
            for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        )
    )


def _resolve_within(host: str, port: int, seconds: float) -> list[str]:
    """`_resolve`, given up after `seconds` (a resolver that never answers does not
    hold the sender past its deadline). Raises OSError."""
    found: list[Any] = []

    def lookup() -> None:
        try:
            found.append(_resolve(host, port))
        except Exception as exc:
            found.append(exc)

    thread = threading.Thread(target=lookup, daemon=True)
    thread.start()
    thread.join(max(seconds, 0.01))
    if not found:
        raise TimeoutError("name resolution timed out")
    if isinstance(found[0], Exception):
        raise OSError("name resolution failed") from found[0]
    return found[0]


@dataclass(frozen=True)
class Target:
    """Where one attempt goes: the checked address, and the name it is for (TLS
    server name, certificate check and Host header)."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


def _url_parts(url: str) -> Any:
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise WebhookError("Enter a valid URL.", field="url") from None
    return parts


def _target(url: str, *, seconds: float) -> Target:
    """The URL's target: its host resolved (within `seconds`), every address it has
    checked. Raises WebhookError (field `url`)."""
    parts = _url_parts(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = _resolve_within(host, port, seconds)
    except OSError:
        raise WebhookError(
            "The URL's host name could not be resolved.", field="url"
        ) from None
    if not addresses:
        raise WebhookError("The URL's host name could not be resolved.", field="url")
    if not all(address_allowed(a) for a in addresses):
        raise WebhookError(
            "The URL leads to a private or local address; events go only to public "
            "ones (or to AMANAH_WEBHOOK_ALLOWED_NETWORKS).",
            field="url",
        )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(
        scheme=parts.scheme, host=host, port=port, path=path, address=addresses[0]
    )


def url_check(url: str) -> str:
    """The URL, if events may go there. Raises WebhookError (field `url`): https
    only (http too with AMANAH_WEBHOOK_ALLOW_HTTP), no credentials in it, a host
    whose every address is public (or in AMANAH_WEBHOOK_ALLOWED_NETWORKS)."""
    url = (url or "").strip()
    parts = _url_parts(url)
    allowed = ("https", "http") if settings.AMANAH_WEBHOOK_ALLOW_HTTP else ("https",)
    if parts.scheme not in allowed:
        raise WebhookError(
            "The URL must start with https://."
            if "http" not in allowed
            else "The URL must start with https:// or http://.",
            field="url",
        )
    if not parts.hostname:
        raise WebhookError("Enter a valid URL.", field="url")
    if parts.username is not None or parts.password is not None:
        raise WebhookError(
            "The URL may not carry a user name or password.", field="url"
        )
    if len(url) > 500:
        raise WebhookError("The URL is too long (500 characters at most).", field="url")
    _target(url, seconds=settings.AMANAH_WEBHOOK_TIMEOUT)
    return url


def _url_unused(url: str, *, scope: str, but: Endpoint | None = None) -> None:
    """Raises WebhookError (field `url`, code `duplicate`) when an active endpoint of
    the same scope already has this URL (a form sent twice registers one)."""
    others = Endpoint.objects.filter(active=True, scope=scope, url=url)
    if but is not None:
        others = others.exclude(pk=but.pk)
    if others.exists():
        raise WebhookError(
            "An endpoint with this URL exists already.", field="url", code="duplicate"
        )


def events_check(events: Sequence[str]) -> list[str]:
    """The event types, deduplicated in their given order. Raises WebhookError."""
    events = list(dict.fromkeys(events or []))
    if not events:
        raise WebhookError("Choose at least one event type.", field="events")
    unknown = [e for e in events if e not in EventType.values]
    if unknown:
        raise WebhookError(f"Unknown event type: {unknown[0][:40]}.", field="events")
    return events


def _cache_set_any() -> None:
    try:
        cache.set(_ANY_ENDPOINT, 1, _ANY_ENDPOINT_SECONDS)
    except Exception:  # a cache that is down never fails the change
        logger.warning("webhooks.cache_unavailable")


def _endpoints_changed(*, added: bool) -> None:
    if added:
        # Before the commit too: a reader meanwhile cannot add "none" over it.
        _cache_set_any()
        transaction.on_commit(_cache_set_any, robust=True)
    else:
        transaction.on_commit(lambda: cache.delete(_ANY_ENDPOINT), robust=True)


@transaction.atomic
def endpoint_create(
    *,
    actor: User,
    url: str,
    events: Sequence[str],
    description: str = "",
    scope: str = Scope.ALL,
) -> tuple[Endpoint, str]:
    """Register an endpoint; returns it and its signing secret (shown once, kept
    sealed under the endpoint's own key). Audited. Raises Forbidden, WebhookError."""
    _admin_required(actor)
    url = url_check(url)
    events = events_check(events)
    if scope not in Scope.values:
        raise WebhookError("Unknown scope.", field="scope")
    _url_unused(url, scope=scope)
    secret = secret_new()
    endpoint = Endpoint(
        url=url,
        description=(description or "").strip()[:200],
        events=events,
        scope=scope,
        data_key=data_key_create(),
        created_at=timezone.now(),
        created_by=actor,
    )
    endpoint.secret = secret
    try:
        with transaction.atomic():
            endpoint.save(force_insert=True)
    except IntegrityError:  # the same URL registered at the same moment
        raise WebhookError(
            "An endpoint with this URL exists already.", field="url", code="duplicate"
        ) from None
    _endpoints_changed(added=True)
    audit.record(
        actor=actor,
        action="webhook.endpoint_created",
        target=endpoint,
        details={"events": events, "scope": scope},
    )
    return endpoint, secret


def _endpoint_lock(endpoint: Endpoint) -> Endpoint:
    """The endpoint's row, locked `FOR NO KEY UPDATE` (a delivery's foreign-key
    check never waits on it). Raises WebhookError once it was deleted."""
    locked = Endpoint.objects.select_for_update(no_key=True).get(pk=endpoint.pk)
    if not locked.active:
        raise WebhookError("This endpoint was deleted.", field="endpoint")
    return locked


@transaction.atomic
def endpoint_delete(*, actor: User, endpoint: Endpoint) -> None:
    """Delete an endpoint: nothing more is sent to it (what it had not received is
    cancelled), its row and finished deliveries go with the purge. Audited. Raises
    Forbidden, WebhookError (deleted already)."""
    _admin_required(actor)
    endpoint = _endpoint_lock(endpoint)
    now = timezone.now()
    endpoint.active = False
    endpoint.deleted_at = now
    endpoint.save(update_fields=["active", "deleted_at"])
    # Before the audit chain (apps/core/db.py). A change committing meanwhile that
    # read the endpoint as active still inserts its delivery (the row stays): the
    # sender cancels it.
    Delivery.objects.filter(
        endpoint=endpoint,
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.DEAD],
    ).update(
        status=DeliveryStatus.CANCELLED,
        cancelled_at=now,
        leased_until=None,
        lease_id=None,
    )
    _endpoints_changed(added=False)
    audit.record(
        actor=actor,
        action="webhook.endpoint_deleted",
        target=endpoint,
        details={"events": endpoint.events, "scope": endpoint.scope},
    )


@transaction.atomic
def endpoint_url_set(*, actor: User, endpoint: Endpoint, url: str) -> Endpoint:
    """Send the endpoint's events to another URL from now on (waiting ones too).
    Audited. Raises Forbidden, WebhookError (a refused URL, a deleted endpoint)."""
    _admin_required(actor)
    url = url_check(url)
    endpoint = _endpoint_lock(endpoint)
    _url_unused(url, scope=endpoint.scope, but=endpoint)
    endpoint.url = url
    endpoint.save(update_fields=["url"])
    audit.record(
        actor=actor, action="webhook.endpoint_changed", target=endpoint, details={}
    )
    return endpoint


@transaction.atomic
def endpoint_secret_rotate(*, actor: User, endpoint: Endpoint) -> str:
    """A new signing secret for the endpoint (the old one stops at once); returned
    once. Audited. Raises Forbidden, WebhookError (deleted)."""
    _admin_required(actor)
    endpoint = _endpoint_lock(endpoint)
    secret = secret_new()
    with key_scope():
        endpoint.secret = secret
        endpoint.save(update_fields=["secret"])
    audit.record(
        actor=actor, action="webhook.secret_rotated", target=endpoint, details={}
    )
    return secret


@transaction.atomic
def deliveries_replay(*, actor: User, endpoint: Endpoint) -> int:
    """Queue the endpoint's dead letters again, in their order, with fresh attempts.
    Returns how many. Audited. Raises Forbidden, WebhookError (deleted)."""
    _admin_required(actor)
    endpoint = _endpoint_lock(endpoint)
    count = Delivery.objects.filter(
        endpoint=endpoint, status=DeliveryStatus.DEAD
    ).update(
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        leased_until=None,
        lease_id=None,
        dead_at=None,
    )
    audit.record(
        actor=actor,
        action="webhook.replayed",
        target=endpoint,
        details={"deliveries": count},
    )
    if count:
        _deliver_on_commit()
    return count


# Emitting (the outbox) ----------------------------------------------------------------


def _any_endpoint() -> bool:
    try:
        flag = cache.get(_ANY_ENDPOINT)
    except Exception:  # a cache that is down never fails the change: ask the table
        logger.warning("webhooks.cache_unavailable")
        return Endpoint.objects.filter(active=True).exists()
    if flag is None:
        flag = int(Endpoint.objects.filter(active=True).exists())
        with contextlib.suppress(Exception):
            cache.add(_ANY_ENDPOINT, flag, _ANY_ENDPOINT_SECONDS)
    return bool(flag)


def event_emit(
    *,
    type: str,
    customer_id: Any,
    data: dict[str, Any],
    request_id: Any = None,
) -> int:
    """Write an event about one customer to the outbox, in the caller's transaction,
    with a delivery for each endpoint it goes to; `request_id`: the data request that
    caused it. The caller holds the customer's row and has not reached the audit
    chain. Returns how many deliveries."""
    return events_emit_bulk(
        type=type, items=[(customer_id, data)], request_id=request_id
    )


def events_emit_bulk(
    *,
    type: str,
    items: Iterable[tuple[Any, dict[str, Any]]],
    request_id: Any = None,
) -> int:
    """Write one event per (customer id, data) to the outbox, in the caller's
    transaction (one INSERT for the events, one for their deliveries), and have them
    delivered after the commit. Nothing is written, and no query made once the
    shared cache knows it, while no endpoint exists; `items` (a generator may make
    them) is not even read then. The caller holds the customers' rows (their events
    keep the order of their commits) and has not reached the audit chain. Returns
    how many deliveries."""
    if not _any_endpoint():
        return 0
    items = list(items)
    if not items:
        return 0
    wanted = [
        (endpoint_id, scope)
        for endpoint_id, events, scope in Endpoint.objects.filter(
            active=True
        ).values_list("id", "events", "scope")
        if type in events
    ]
    every = [endpoint_id for endpoint_id, scope in wanted if scope == Scope.ALL]
    scoped = {endpoint_id for endpoint_id, scope in wanted if scope == Scope.RECIPIENTS}
    received: dict[UUID, dict[UUID, list[str]]] = {}
    if scoped and type in ART19_TYPES:
        received = recipient_endpoints_for(customer_ids=[c for c, _ in items])
    request = UUID(str(request_id)) if request_id is not None else None
    now = timezone.now()
    events: list[Event] = []
    deliveries: list[Delivery] = []
    for customer_id, data in items:
        customer_id = UUID(str(customer_id))
        theirs = received.get(customer_id, {})
        targets: list[tuple[UUID, list[str]]] = [(e, []) for e in every] + [
            (e, sorted(theirs[e])) for e in sorted(set(theirs) & scoped)
        ]
        if not targets:
            continue
        event = Event(
            id=event_id_new(),
            type=type,
            customer_id=customer_id,
            request_id=request,
            created_at=now,
            payload={
                "type": type,
                "timestamp": now.isoformat(),
                "data": {"customer_id": str(customer_id), **data},
            },
        )
        events.append(event)
        deliveries.extend(
            Delivery(
                event=event,
                endpoint_id=endpoint_id,
                customer_id=customer_id,
                recipients=names,
                next_attempt_at=now,
            )
            for endpoint_id, names in targets
        )
    if not deliveries:
        return 0
    Event.objects.bulk_create(events)
    Delivery.objects.bulk_create(deliveries)
    _deliver_on_commit()
    return len(deliveries)


def _deliver_on_commit() -> None:
    """After the commit, have a worker send what is due. Not without a broker (tasks
    run eagerly, inside the web request): a slow receiver would hold the page that
    made the change; `manage.py deliver_webhooks` sends then."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return

    def deliver_soon() -> None:
        # services <-> tasks: the one accepted cycle (a task module imported inside
        # the function that enqueues it).
        from apps.webhooks.tasks import deliveries_send_all_due_task

        deliveries_send_all_due_task.delay()

    transaction.on_commit(deliver_soon, robust=True)


# Delivering --------------------------------------------------------------------------


def _attempt_seconds() -> float:
    return float(settings.AMANAH_WEBHOOK_TIMEOUT)


def _lease() -> timedelta:
    """How long a claim holds a delivery: one whole attempt and a margin."""
    return timedelta(seconds=_attempt_seconds() + LEASE_MARGIN_SECONDS)


@dataclass(frozen=True)
class _Claimed:
    id: int
    lease_id: UUID
    event_id: str
    endpoint_id: UUID
    payload: dict[str, Any]


def _due(now: datetime) -> Any:
    earlier = Delivery.objects.filter(
        endpoint_id=OuterRef("endpoint_id"),
        customer_id=OuterRef("customer_id"),
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.DEAD],
        id__lt=OuterRef("id"),
    )
    return (
        Delivery.objects.filter(
            status=DeliveryStatus.PENDING,
            next_attempt_at__lte=now,
        )
        .filter(Q(leased_until__isnull=True) | Q(leased_until__lte=now))
        .exclude(Exists(earlier))
    )


def _claim(limit: int) -> list[_Claimed]:
    """Lease the due deliveries (the first waiting one of each endpoint and customer)
    in a short transaction, under a lease id of this claim; rows another worker holds
    are skipped."""
    now = timezone.now()
    lease_id = uuid.uuid4()
    with transaction.atomic():
        rows = list(
            _due(now)
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("id")
            .values_list("id", "event_id", "endpoint_id")[:limit]
        )
        if not rows:
            return []
        # Each item's lease is renewed right before it is sent (`_lease_renew`): one
        # whose turn comes late may meanwhile be taken over by another sender.
        Delivery.objects.filter(pk__in=[r[0] for r in rows]).update(
            leased_until=now + _lease(), lease_id=lease_id
        )
        payloads = dict(
            Event.objects.filter(pk__in={r[1] for r in rows}).values_list(
                "id", "payload"
            )
        )
    return [
        _Claimed(
            id=id_,
            lease_id=lease_id,
            event_id=event_id,
            endpoint_id=endpoint_id,
            payload=payloads[event_id],
        )
        for id_, event_id, endpoint_id in rows
    ]


def _mine(item: _Claimed) -> Any:
    """The item's row while this claim still holds it, not yet finished."""
    return Delivery.objects.filter(
        pk=item.id, lease_id=item.lease_id, status=DeliveryStatus.PENDING
    )


def _lease_renew(item: _Claimed) -> bool:
    """Extend the item's lease for one attempt from now, if this claim still holds
    it (one statement). False: another sender took it over, or it was cancelled."""
    return _mine(item).update(leased_until=timezone.now() + _lease()) == 1


def _backoff(attempts: int) -> timedelta:
    """Exponential, with jitter: base * 2^(attempts-1), capped, ±20 %."""
    base = settings.AMANAH_WEBHOOK_RETRY_SECONDS
    seconds = min(base * 2 ** max(attempts - 1, 0), settings.AMANAH_WEBHOOK_RETRY_MAX)
    return timedelta(seconds=seconds * random.uniform(0.8, 1.2))  # noqa: S311 - jitter  # nosec B311


def signed_request(
    *, secret: str, event_id: str, payload: dict[str, Any], at: datetime
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt (Standard Webhooks: `webhook-id`,
    `webhook-timestamp`, `webhook-signature` v1, HMAC-SHA256 of id.timestamp.body)."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    signature = Webhook(secret).sign(msg_id=event_id, timestamp=at, data=body)
    return body.encode(), {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


class _Watched:
    """A connection that keeps its raw socket, so that a watchdog can cut it (and
    cuts it at once if the deadline passed while it was being opened)."""

    raw: socket.socket | None = None
    deadline_passed: threading.Event | None = None

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        self.raw = sock
        if self.deadline_passed is not None and self.deadline_passed.is_set():
            _cut(sock)
        return sock


def _cut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _HTTP(_Watched, HTTPConnection):
    pass


class _HTTPS(_Watched, HTTPSConnection):
    pass


def _host_header(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = 443 if target.scheme == "https" else 80
    return host if target.port == default else f"{host}:{target.port}"


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[bool, str]:
    """Send one attempt within AMANAH_WEBHOOK_TIMEOUT seconds of wall-clock time
    (resolving, connecting, TLS, sending and the answer's status line and headers
    together: at the deadline the socket is cut); (delivered, what happened). The
    host is resolved and checked again, and the connection made to the checked
    address (TLS and the Host header for the name). Never the response's body."""
    seconds = _attempt_seconds()
    started = time.monotonic()
    try:
        target = _target(url, seconds=seconds)
    except WebhookError:
        return False, "url refused"
    left = seconds - (time.monotonic() - started)
    if left <= 0:
        return False, "timeout"
    conn: _HTTP | _HTTPS
    if target.scheme == "https":
        conn = _HTTPS(
            target.address,
            target.port,
            timeout=left,
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    else:
        conn = _HTTP(target.address, target.port, timeout=left)
    timed_out = threading.Event()
    conn.deadline_passed = timed_out

    def cut() -> None:
        timed_out.set()
        if conn.raw is not None:
            _cut(conn.raw)

    watchdog = threading.Timer(left, cut)
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request(
            "POST",
            target.path,
            body=body,
            headers={**headers, "Host": _host_header(target)},
            preload_content=False,
        )
        if timed_out.is_set():
            return False, "timeout"
        status = conn.getresponse().status
    except Exception as exc:
        if timed_out.is_set() or isinstance(exc, TimeoutError | socket.timeout):
            return False, "timeout"
        if isinstance(exc, ssl.SSLError | SSLError | CertificateError):
            return False, "tls error"
        if isinstance(exc, ConnectionRefusedError) or "refused" in str(exc).lower():
            return False, "connection refused"
        if isinstance(exc, OSError):
            return False, "connection error"
        return False, "request error"
    finally:
        watchdog.cancel()
        conn.close()
    if timed_out.is_set():
        return False, "timeout"
    return 200 <= status < 300, f"HTTP {status}"


def _record(item: _Claimed, *, delivered: bool, response: str) -> bool:
    """Record one attempt, only while this claim still holds the delivery: a sender
    whose lease was taken over changes nothing. Lock order: the delivery's row, then
    the audit chain (a dead letter)."""
    now = timezone.now()
    with transaction.atomic():
        attempts = (
            _mine(item)
            .select_for_update(no_key=True)
            .values_list("attempts", flat=True)
            .first()
        )
        if attempts is None:
            logger.warning(
                "webhooks.lease_lost", extra={"delivery": item.id, "response": response}
            )
            return False
        attempts += 1
        rows = Delivery.objects.filter(pk=item.id)
        done = {
            "attempts": attempts,
            "leased_until": None,
            "lease_id": None,
            "last_attempt_at": now,
        }
        if delivered:
            rows.update(
                status=DeliveryStatus.DELIVERED,
                delivered_at=now,
                last_response=response,
                **done,
            )
            return True
        if attempts < settings.AMANAH_WEBHOOK_MAX_ATTEMPTS:
            rows.update(
                next_attempt_at=now + _backoff(attempts),
                last_response=response,
                **done,
            )
        else:
            rows.update(
                status=DeliveryStatus.DEAD,
                dead_at=now,
                last_response=response,
                **done,
            )
            audit.record(
                actor=None,
                action="webhook.dead_lettered",
                target_type="webhooks.endpoint",
                target_id=str(item.endpoint_id),
                details={
                    "delivery": item.id,
                    "event": item.event_id,
                    "attempts": attempts,
                    "response": response,
                },
            )
    logger.warning(
        "webhooks.delivery_failed",
        extra={"delivery": item.id, "attempts": attempts, "response": response},
    )
    return True


def _cancel(item: _Claimed) -> None:
    """Its endpoint was deleted: the delivery is never sent."""
    _mine(item).update(
        status=DeliveryStatus.CANCELLED,
        cancelled_at=timezone.now(),
        leased_until=None,
        lease_id=None,
    )


@dataclass(frozen=True)
class SendCounts:
    """What a sending run did: deliveries claimed, and of those delivered, failed
    (to be retried, or dead letters now) and cancelled (endpoint deleted)."""

    claimed: int = 0
    delivered: int = 0
    failed: int = 0
    cancelled: int = 0

    def __add__(self, other: "SendCounts") -> "SendCounts":
        return SendCounts(
            claimed=self.claimed + other.claimed,
            delivered=self.delivered + other.delivered,
            failed=self.failed + other.failed,
            cancelled=self.cancelled + other.cancelled,
        )


def deliveries_send_due(*, limit: int = 100) -> int:
    """Send the due deliveries (at most `limit`; for each endpoint and customer only
    the first still waiting), each signed, outside any transaction, each within its
    own deadline and lease, and record each result. Deliveries to a deleted endpoint
    are cancelled. Returns how many were claimed."""
    return _send_due(limit=limit).claimed


def _send_due(*, limit: int) -> SendCounts:
    claimed = _claim(limit)
    if not claimed:
        return SendCounts()
    return _send_claimed(claimed)


def _send_claimed(claimed: list[_Claimed]) -> SendCounts:
    """Send what one claim holds, in order, each item only while the claim still
    holds it."""
    endpoints = {
        e.pk: e
        for e in Endpoint.objects.select_related("data_key").filter(
            pk__in={c.endpoint_id for c in claimed}
        )
    }
    with key_scope():
        keys = {pk: (e.url, str(e.secret)) for pk, e in endpoints.items() if e.active}
    delivered = failed = cancelled = 0
    for item in claimed:
        if item.endpoint_id not in keys:
            _cancel(item)
            cancelled += 1
            continue
        if not _lease_renew(item):
            continue  # taken over by another sender meanwhile, or cancelled
        url, secret = keys[item.endpoint_id]
        body, headers = signed_request(
            secret=secret,
            event_id=item.event_id,
            payload=item.payload,
            at=timezone.now(),
        )
        ok, response = _post(url, body, headers)
        if _record(item, delivered=ok, response=response):
            delivered += ok
            failed += not ok
    return SendCounts(
        claimed=len(claimed), delivered=delivered, failed=failed, cancelled=cancelled
    )


def deliveries_send_all_due_counted(
    *, rounds: int = 50, limit: int = 100
) -> SendCounts:
    """Send due deliveries until none is left (a delivered one lets the customer's
    next one through), for at most `rounds` batches; what was done, counted."""
    total = SendCounts()
    for _ in range(rounds):
        counts = _send_due(limit=limit)
        if not counts.claimed:
            break
        total += counts
    return total


def deliveries_send_all_due(*, rounds: int = 50, limit: int = 100) -> int:
    """`deliveries_send_all_due_counted`; returns how many were claimed."""
    return deliveries_send_all_due_counted(rounds=rounds, limit=limit).claimed


# Purging -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeResult:
    deliveries: int
    events: int
    endpoints: int


PURGE_BATCH = 1000


def _kept_for_requests() -> Q:
    """What a data request's page shows (GDPR art. 19): its erasures and corrections
    passed on to recipients. Requests are never deleted, so neither is this."""
    return Q(event__request_id__isnull=False, event__type__in=ART19_TYPES)


def deliveries_purge(*, now: datetime | None = None) -> PurgeResult:
    """Delete delivered and cancelled deliveries finished more than
    AMANAH_WEBHOOK_KEEP_DAYS ago (except those a request's art. 19 record shows),
    then the events left with no delivery, then endpoints deleted that long ago with
    no delivery left (destroying the data key that sealed each one's secret). Short
    transactions, no audit chain. Returns the counts."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.AMANAH_WEBHOOK_KEEP_DAYS)
    # Deliveries a change wrote for an endpoint deleted meanwhile (it read the
    # endpoint as active) and that no sender met yet.
    Delivery.objects.filter(
        endpoint__active=False,
        status__in=[DeliveryStatus.PENDING, DeliveryStatus.DEAD],
    ).update(
        status=DeliveryStatus.CANCELLED,
        cancelled_at=now,
        leased_until=None,
        lease_id=None,
    )
    finished = Q(status=DeliveryStatus.DELIVERED, delivered_at__lt=cutoff) | Q(
        status=DeliveryStatus.CANCELLED, cancelled_at__lt=cutoff
    )
    deliveries = 0
    while True:
        with transaction.atomic():
            ids = list(
                Delivery.objects.filter(finished)
                .exclude(_kept_for_requests())
                .values_list("pk", flat=True)[:PURGE_BATCH]
            )
            if not ids:
                break
            deliveries += Delivery.objects.filter(pk__in=ids).delete()[0]
    events = 0
    while True:
        with transaction.atomic():
            event_ids = list(
                Event.objects.filter(created_at__lt=cutoff)
                .exclude(Exists(Delivery.objects.filter(event_id=OuterRef("pk"))))
                .values_list("pk", flat=True)[:PURGE_BATCH]
            )
            if not event_ids:
                break
            events += Event.objects.filter(pk__in=event_ids).delete()[0]
    endpoints = 0
    gone = Endpoint.objects.filter(active=False, deleted_at__lt=cutoff).exclude(
        Exists(Delivery.objects.filter(endpoint_id=OuterRef("pk")))
    )
    for endpoint in list(gone.select_related("data_key")):
        with transaction.atomic():
            deleted = (
                Endpoint.objects.filter(pk=endpoint.pk)
                .delete()[1]
                .get("webhooks.Endpoint", 0)
            )
            if deleted:
                # Its sealed signing secret can never be opened again.
                data_key_destroy(data_key=endpoint.data_key)
            endpoints += deleted
    logger.info(
        "webhooks.purged",
        extra={"deliveries": deliveries, "events": events, "endpoints": endpoints},
    )
    return PurgeResult(deliveries=deliveries, events=events, endpoints=endpoints)
