"""Delivery to a real HTTP receiver: signed, retried with backoff, dead-lettered,
replayed, at least once with a stable id and in order per customer."""

import base64
import contextlib
import functools
import hashlib
import hmac
import itertools
import socket
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from apps.audit.models import AuditEvent
from apps.webhooks import services, tasks
from apps.webhooks.models import Delivery, DeliveryStatus, Event
from apps.webhooks.services import (
    _backoff,
    deliveries_replay,
    deliveries_send_all_due,
    deliveries_send_due,
    endpoint_secret_rotate,
    event_emit,
    secret_new,
    signed_request,
)
from tests.brokers import redis_url_or_skip, thread_worker
from tests.concurrency import at_once
from tests.customers.factories import make_customer
from tests.webhooks.factories import make_endpoint
from tests.webhooks.receiver import Receiver, processed_once
from tests.webhooks.tls import TlsReceiver

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def emit(customer, n: int) -> None:
    event_emit(type="consent.changed", customer_id=customer.pk, data={"n": n})


def make_due() -> None:
    """The clock moved on: every waiting retry is due now."""
    Delivery.objects.filter(status=DeliveryStatus.PENDING).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_delivery_is_signed_and_verifies_with_the_secret(privacy_admin, receiver):
    _, secret = make_endpoint(privacy_admin, receiver.url)
    customer = make_customer()
    emit(customer, 1)
    assert deliveries_send_due() == 1
    [(headers, body)] = receiver.received
    assert headers["User-Agent"].startswith("Amanah-Webhooks/")
    assert headers["webhook-id"].startswith("msg_")
    payload = Webhook(secret).verify(body, headers)
    assert payload["type"] == "consent.changed"
    assert payload["data"] == {"customer_id": str(customer.pk), "n": 1}
    delivery = Delivery.objects.get()
    assert delivery.status == DeliveryStatus.DELIVERED
    assert delivery.last_response == "HTTP 204"
    assert delivery.delivered_at is not None


def test_a_wrong_secret_or_a_tampered_body_fails_verification(privacy_admin, receiver):
    make_endpoint(privacy_admin, receiver.url)
    other_secret = secret_new()
    emit(make_customer(), 1)
    deliveries_send_due()
    [(headers, body)] = receiver.received
    with pytest.raises(WebhookVerificationError):
        Webhook(other_secret).verify(body, headers)
    secret = Delivery.objects.get().endpoint.secret
    tampered = body.replace(b'"n":1', b'"n":2')
    assert tampered != body
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, headers)
    Webhook(secret).verify(body, headers)


def test_a_failure_is_retried_with_backoff_then_dead_lettered_and_replayed(
    privacy_admin, receiver, settings
):
    settings.AMANAH_WEBHOOK_MAX_ATTEMPTS = 3
    settings.AMANAH_WEBHOOK_RETRY_SECONDS = 60
    receiver.status = 503
    endpoint, _ = make_endpoint(privacy_admin, receiver.url)
    customer = make_customer()
    emit(customer, 1)
    emit(customer, 2)
    before = timezone.now()
    assert deliveries_send_due() == 1  # the second waits behind the first
    first = Delivery.objects.order_by("id").first()
    assert (first.attempts, first.last_response) == (1, "HTTP 503")
    # 60 s ± 20 %
    assert before + timedelta(seconds=47) < first.next_attempt_at
    assert first.next_attempt_at < timezone.now() + timedelta(seconds=73)
    assert deliveries_send_due() == 0  # not due yet
    make_due()
    assert deliveries_send_due() == 1
    first.refresh_from_db()
    assert first.next_attempt_at > timezone.now() + timedelta(seconds=95)  # 120 s
    make_due()
    deliveries_send_due()
    first.refresh_from_db()
    assert first.status == DeliveryStatus.DEAD
    assert first.attempts == 3
    dead = AuditEvent.objects.get(action="webhook.dead_lettered")
    assert dead.details["response"] == "HTTP 503"
    # A dead letter holds the customer's later events for this endpoint.
    make_due()
    assert deliveries_send_due() == 0
    assert len(receiver.received) == 3

    receiver.status = 200
    assert deliveries_replay(actor=privacy_admin, endpoint=endpoint) == 1
    assert AuditEvent.objects.filter(action="webhook.replayed").exists()
    assert deliveries_send_all_due() == 2
    ns = [e["data"]["n"] for e in receiver.events()]
    assert ns == [1, 1, 1, 1, 2]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_backoff_grows_exponentially_with_jitter(settings):
    settings.AMANAH_WEBHOOK_RETRY_SECONDS = 10
    settings.AMANAH_WEBHOOK_RETRY_MAX = 1000
    for attempts, expected in ((1, 10), (2, 20), (3, 40), (8, 1000)):
        seconds = _backoff(attempts).total_seconds()
        assert expected * 0.8 <= seconds <= expected * 1.2


def test_a_refused_connection_is_recorded_as_such(privacy_admin):
    gone = Receiver()  # never started
    make_endpoint(privacy_admin, gone.url)
    emit(make_customer(), 1)
    deliveries_send_due()
    delivery = Delivery.objects.get()
    assert delivery.last_response == "connection refused"
    assert delivery.status == DeliveryStatus.PENDING


class Killed(BaseException):
    """The worker process dies: nothing after this point runs."""


def test_a_receiver_and_a_worker_killed_during_sends_lose_no_event(
    privacy_admin, settings, monkeypatch
):
    """The receiver reads an event and dies before answering; later the worker dies
    between a send and its record. After both come back every event arrives, a
    receiver deduplicating by id processes each once, in order per customer."""
    settings.AMANAH_WEBHOOK_MAX_ATTEMPTS = 50
    receiver = Receiver(die_on=3).start()
    make_endpoint(privacy_admin, receiver.url)
    customers = [make_customer() for _ in range(3)]
    for n in range(4):
        for customer in customers:
            emit(customer, n)
    assert deliveries_send_due() == 3  # the first of each customer
    assert len(receiver.received) == 3  # the third read, never answered
    assert receiver.server is None  # dead
    unanswered = Delivery.objects.get(status="pending", attempts=1)
    assert unanswered.last_response in ("connection error", "connection refused")
    for n in range(4, 6):
        for customer in customers:
            emit(customer, n)
    for _ in range(3):
        make_due()
        deliveries_send_due()
    assert len(receiver.received) == 3  # down: nothing arrived

    back = Receiver(port=receiver.port).start()
    record = services._record

    def killed_after_the_send(item, **kwargs):
        monkeypatch.setattr(services, "_record", record)
        raise Killed

    monkeypatch.setattr(services, "_record", killed_after_the_send)
    try:
        make_due()
        with pytest.raises(Killed):
            deliveries_send_due()
        assert len(back.received) == 1  # sent, never recorded
        # The worker comes back after its lease ran out.
        Delivery.objects.filter(leased_until__isnull=False).update(
            leased_until=timezone.now() - timedelta(seconds=1)
        )
        for _ in range(30):
            make_due()
            if not deliveries_send_due():
                break
        arrived = receiver.events() + back.events()
    finally:
        back.stop()
    assert len(arrived) > 18  # at least once: the unanswered one came again
    processed = processed_once(arrived)
    assert {e["id"] for e in processed} == set(
        Event.objects.values_list("id", flat=True)
    )
    assert len(processed) == 18
    for customer in customers:
        ns = [
            e["data"]["n"]
            for e in processed
            if e["data"]["customer_id"] == str(customer.pk)
        ]
        assert ns == list(range(6))
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_a_sender_whose_lease_was_taken_over_neither_resends_nor_overwrites(
    privacy_admin, receiver
):
    make_endpoint(privacy_admin, receiver.url)
    customer = make_customer()
    emit(customer, 1)
    emit(customer, 2)
    stale = services._claim(10)  # worker A claims the first, then stalls
    assert len(stale) == 1
    Delivery.objects.update(leased_until=timezone.now() - timedelta(seconds=1))
    assert deliveries_send_all_due() == 2  # worker B takes it over, and the next
    assert [e["data"]["n"] for e in receiver.events()] == [1, 2]
    before = list(Delivery.objects.order_by("id").values())
    # A wakes up: it sends nothing of what it claimed, and records nothing.
    services._send_claimed(stale)
    services._record(stale[0], delivered=False, response="timeout")
    assert [e["data"]["n"] for e in receiver.events()] == [1, 2]
    assert list(Delivery.objects.order_by("id").values()) == before
    first = Delivery.objects.order_by("id").first()
    assert (first.status, first.attempts, first.last_response) == (
        "delivered",
        1,
        "HTTP 204",
    )


def test_a_lease_is_renewed_for_each_item_right_before_its_send(
    privacy_admin, receiver, settings, monkeypatch
):
    settings.AMANAH_WEBHOOK_TIMEOUT = 10
    make_endpoint(privacy_admin, receiver.url)
    emit(make_customer(), 1)
    claimed = services._claim(10)
    leases = []

    def post(url, body, headers):
        leases.append(Delivery.objects.values_list("leased_until", "lease_id").get())
        return True, "HTTP 204"

    monkeypatch.setattr(services, "_post", post)
    started = timezone.now()
    services._send_claimed(claimed)
    [(until, lease_id)] = leases
    assert lease_id == claimed[0].lease_id
    assert (
        started + timedelta(seconds=39) < until < timezone.now() + timedelta(seconds=41)
    )  # one attempt (10 s) and the margin (30 s), from the send
    assert Delivery.objects.values_list("leased_until", "lease_id").get() == (
        None,
        None,
    )


@pytest.mark.django_db(transaction=True)
def test_two_senders_at_once_never_send_one_delivery_twice_and_keep_order(
    privacy_admin, monkeypatch
):
    # Only the two senders below deliver (no task on commit).
    monkeypatch.setattr(tasks.deliveries_send_all_due_task, "delay", lambda: None)
    receiver = Receiver().start()
    try:
        make_endpoint(privacy_admin, receiver.url)
        customers = [make_customer() for _ in range(8)]
        for n in range(5):
            for customer in customers:
                emit(customer, n)
        assert not receiver.received
        for _ in range(10):
            results = at_once(
                [
                    lambda: deliveries_send_due(limit=3),
                    lambda: deliveries_send_due(limit=3),
                ]
            )
            assert all(isinstance(r, int) for r in results), results
            if not any(results):
                break
        events = receiver.events()
    finally:
        receiver.stop()
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)) == 40
    for customer in customers:
        ns = [
            e["data"]["n"]
            for e in events
            if e["data"]["customer_id"] == str(customer.pk)
        ]
        assert ns == list(range(5))


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_every_event_once_after_the_receiver_returns(
    privacy_admin, settings, monkeypatch
):
    """A real Celery worker on Redis (db 5): each commit queues `webhooks.deliver`;
    the receiver is stopped mid-run and restarted on the same port; the beat's
    periodic `webhooks.deliver` (sent here by the test) brings the rest."""
    redis_url_or_skip()
    settings.AMANAH_WEBHOOK_MAX_ATTEMPTS = 1000
    settings.AMANAH_WEBHOOK_RETRY_SECONDS = 0.2
    settings.AMANAH_WEBHOOK_RETRY_MAX = 0.5
    queue = f"amanah-test-{uuid.uuid4().hex[:8]}"
    receiver = Receiver().start()
    back = None
    make_endpoint(privacy_admin, receiver.url)
    customers = [make_customer() for _ in range(3)]
    try:
        with thread_worker(REDIS_DB5, queue, settings, monkeypatch):
            for n in range(3):
                for customer in customers:
                    emit(customer, n)
            wait(lambda: len(receiver.received) == 9)
            receiver.stop()
            for n in range(3, 6):
                for customer in customers:
                    emit(customer, n)
            wait(
                lambda: Delivery.objects.filter(
                    attempts__gte=1, status=DeliveryStatus.PENDING
                ).exists()
            )
            back = Receiver(port=receiver.port).start()
            # What beat sends every 30 seconds, here every second.
            deadline = time.monotonic() + 40
            while len(back.received) < 9:
                assert time.monotonic() < deadline, "timed out"
                tasks.deliveries_send_all_due_task.delay()
                time.sleep(1)
    finally:
        receiver.stop()
        if back is not None:
            back.stop()
    events = processed_once(receiver.events() + back.events())
    assert len(events) == 18  # each id processed once
    for customer in customers:
        ns = [
            e["data"]["n"]
            for e in events
            if e["data"]["customer_id"] == str(customer.pk)
        ]
        assert ns == list(range(6))
    assert set(Delivery.objects.values_list("status", flat=True)) == {"delivered"}


REDIS_DB5 = "redis://127.0.0.1:6379/5"


def wait(condition, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_redirect_is_not_followed(privacy_admin, receiver):
    receiver.status = 302
    make_endpoint(privacy_admin, receiver.url)
    emit(make_customer(), 1)
    deliveries_send_due()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.last_response) == ("pending", "HTTP 302")
    assert len(receiver.received) == 1


def test_a_receiver_that_does_not_answer_times_out(privacy_admin, settings):
    settings.AMANAH_WEBHOOK_TIMEOUT = 0.5
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        port = silent.getsockname()[1]
        make_endpoint(privacy_admin, f"http://127.0.0.1:{port}/hook")
        emit(make_customer(), 1)
        deliveries_send_due()
    finally:
        silent.close()
    assert Delivery.objects.get().last_response == "timeout"


def test_after_a_rotation_only_the_new_secret_verifies(privacy_admin, receiver):
    endpoint, old = make_endpoint(privacy_admin, receiver.url)
    new = endpoint_secret_rotate(actor=privacy_admin, endpoint=endpoint)
    emit(make_customer(), 1)
    deliveries_send_due()
    [(headers, body)] = receiver.received
    Webhook(new).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(body, headers)


def test_a_dead_letter_holds_only_its_customers_later_events(
    privacy_admin, receiver, settings
):
    settings.AMANAH_WEBHOOK_MAX_ATTEMPTS = 1
    receiver.status = 503
    make_endpoint(privacy_admin, receiver.url)
    held, other = make_customer(), make_customer()
    emit(held, 1)
    deliveries_send_due()
    receiver.status = 200
    emit(held, 2)
    emit(other, 1)
    deliveries_send_all_due()
    assert [e["data"]["customer_id"] for e in receiver.events()[1:]] == [str(other.pk)]
    statuses = dict(
        Delivery.objects.filter(customer_id=held.pk).values_list(
            "event__payload__data__n", "status"
        )
    )
    assert statuses == {1: "dead", 2: "pending"}


def drip_server() -> tuple[socket.socket, threading.Event]:
    """Accepts, reads, then answers one byte of a status line every 0.1 s, forever:
    each read is quick, the answer never ends."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        with contextlib.suppress(OSError):
            conn, _ = server.accept()
            conn.recv(65536)
            with conn:
                for byte in itertools.cycle(b"HTTP/1.1 200 OK\r\nX-Slow: a"):
                    if stop.is_set():
                        break
                    conn.send(bytes([byte]))
                    time.sleep(0.1)

    threading.Thread(target=serve, daemon=True).start()
    return server, stop


def test_a_receiver_dripping_its_answer_is_cut_at_the_deadline(privacy_admin, settings):
    settings.AMANAH_WEBHOOK_TIMEOUT = 1
    server, stop = drip_server()
    try:
        port = server.getsockname()[1]
        make_endpoint(privacy_admin, f"http://127.0.0.1:{port}/hook")
        emit(make_customer(), 1)
        started = time.monotonic()
        deliveries_send_due()
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        server.close()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.last_response) == ("pending", "timeout")
    assert elapsed < 2.5


def test_the_signature_matches_an_independent_computation():
    """Standard Webhooks v1, computed here with hmac and hashlib alone: base64 of
    HMAC-SHA256 over `id.timestamp.body`, keyed by the secret's base64-decoded part."""
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    at = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    body, headers = signed_request(
        secret=secret,
        event_id="msg_0123456789abcdef",
        payload={"type": "customer.erased", "data": {"customer_id": "c-1"}},
        at=at,
    )
    assert body == b'{"data":{"customer_id":"c-1"},"type":"customer.erased"}'
    assert headers["webhook-id"] == "msg_0123456789abcdef"
    assert headers["webhook-timestamp"] == "1796212800"
    signed = b"msg_0123456789abcdef.1796212800." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest())
    assert headers["webhook-signature"] == "v1," + expected.decode()
    assert headers["webhook-signature"] == (
        "v1,aVgmQRfdm55drdv9kIve5NApMmclJXDmllYTGiw9Jc4="
    )


def test_a_host_that_now_resolves_to_a_private_address_gets_nothing(
    privacy_admin, receiver, settings, monkeypatch
):
    """Registered while public, its name then points inside (DNS rebinding): each
    send resolves and checks again."""
    make_endpoint(privacy_admin, "http://hooks.example/hook")
    settings.AMANAH_WEBHOOK_ALLOWED_NETWORKS = []
    monkeypatch.setattr(services, "_resolve", lambda host, port: ["10.0.0.5"])
    emit(make_customer(), 1)
    deliveries_send_due()
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.last_response) == ("pending", "url refused")


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(
    privacy_admin, receiver, monkeypatch
):
    answers = iter([["127.0.0.1"], ["127.0.0.1"], ["10.9.9.9"]])
    monkeypatch.setattr(services, "_resolve", lambda host, port: next(answers))
    make_endpoint(privacy_admin, f"http://hooks.example:{receiver.port}/hook?x=1")
    emit(make_customer(), 1)
    deliveries_send_due()
    [(headers, _)] = receiver.received
    assert headers["Host"] == f"hooks.example:{receiver.port}"
    assert Delivery.objects.get().status == DeliveryStatus.DELIVERED
    # Resolved once at registration and once for the send, whose checked answer
    # the connection used: no second lookup could point it elsewhere.
    assert list(answers) == [["10.9.9.9"]]


@pytest.mark.parametrize("certified", ["hooks.example", "other.example"])
def test_tls_goes_to_the_checked_address_for_the_name(
    privacy_admin, monkeypatch, certified
):
    """The connection is made to the address checked, with the URL's name as TLS
    server name, certificate name and Host; a certificate for another name fails."""
    tls = TlsReceiver(certified)
    monkeypatch.setattr(services, "_resolve", lambda host, port: ["127.0.0.1"])
    # The receiver's CA trusted, as a public one would be.
    monkeypatch.setattr(
        services, "_HTTPS", functools.partial(services._HTTPS, ca_certs=str(tls.ca))
    )
    try:
        make_endpoint(privacy_admin, f"https://hooks.example:{tls.port}/hook")
        emit(make_customer(), 1)
        deliveries_send_due()
    finally:
        tls.stop()
    delivery = Delivery.objects.get()
    assert tls.server_names == ["hooks.example"]
    if certified == "hooks.example":
        assert delivery.status == DeliveryStatus.DELIVERED
        assert tls.hosts == [f"hooks.example:{tls.port}"]
    else:
        assert (delivery.status, delivery.last_response) == (
            "pending",
            "tls error",
        )
        assert tls.hosts == []


def test_a_resolver_that_hangs_does_not_hold_the_sender_past_the_deadline(
    privacy_admin, settings, monkeypatch
):
    make_endpoint(privacy_admin, "https://hooks.example/hook")
    settings.AMANAH_WEBHOOK_TIMEOUT = 0.5
    monkeypatch.setattr(
        services, "_resolve", lambda host, port: time.sleep(3) or ["93.184.215.14"]
    )
    emit(make_customer(), 1)
    started = time.monotonic()
    deliveries_send_due()
    assert time.monotonic() - started < 1.5
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.last_response) == ("pending", "url refused")
