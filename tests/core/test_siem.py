"""Security events out: audit events and alerts reach a syslog listener the test starts
(RFC 5424 over TCP, octet-counted) and a file, after commit, without personal data."""

import json
import logging
import re
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest
from django.db import transaction
from django.utils import timezone

from apps.audit import services as audit
from apps.audit.models import AuditEvent
from apps.core import siem
from apps.customers.models import Customer
from apps.monitoring.services import alert_raise
from tests.config.test_settings import _manage
from tests.customers.factories import CANARY, make_canary, make_customer
from tests.monitoring.factories import hit

# RFC 5424: <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG
SYSLOG_RE = re.compile(
    r"<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) "
    r"(?P<host>[!-~]{1,255}) amanah (?P<procid>\d+) (?P<msgid>audit|alert) - "
    r"(?P<msg>\{.*\})\Z",
    re.DOTALL,
)


class Listener(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received = bytearray()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"tcp://127.0.0.1:{self.server_address[1]}"

    def frames(self, count: int, timeout: float = 5.0) -> list[bytes]:
        """The first `count` octet-counted frames (RFC 6587 §3.4.1), waited for."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                frames, rest = _split(bytes(self.received))
            if len(frames) >= count or time.monotonic() > deadline:
                assert len(frames) >= count, (frames, rest)
                return frames
            time.sleep(0.02)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while chunk := self.request.recv(65536):
            with self.server.lock:  # type: ignore[attr-defined]
                self.server.received.extend(chunk)  # type: ignore[attr-defined]


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    frames = []
    while (space := data.find(b" ")) > 0:
        length = int(data[:space])
        if len(data) < space + 1 + length:
            break
        frames.append(data[space + 1 : space + 1 + length])
        data = data[space + 1 + length :]
    return frames, data


def _parse(frame: bytes) -> tuple[int, str, dict]:
    match = SYSLOG_RE.match(frame.decode())
    assert match, frame
    return int(match["pri"]), match["msgid"], json.loads(match["msg"])


@pytest.fixture
def listener(settings) -> Iterator[Listener]:
    server = Listener()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings.AMANAH_SIEM_SYSLOG = server.url
    yield server
    server.shutdown()
    server.server_close()
    sender = siem._senders.pop(("127.0.0.1", server.server_address[1]), None)
    if sender is not None:
        sender._close()


def test_an_audit_event_arrives_framed_and_parseable_after_commit(
    listener, support_agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        event = audit.record(
            actor=support_agent, action="test.done", details={"count": 3}
        )
    assert not listener.received  # nothing leaves before the commit
    for callback in callbacks:
        callback()

    (frame,) = listener.frames(1)
    pri, msgid, body = _parse(frame)
    assert pri == 10 * 8 + 5  # authpriv.notice
    assert msgid == "audit"
    assert body == {
        "type": "audit",
        "seq": event.seq,
        "hash": event.hash,
        "time": event.created_at.isoformat(),
        "action": "test.done",
        "actor_id": support_agent.pk,
        "actor_role": support_agent.role,
        "target_type": "",
        "target_id": "",
        "details": {"count": 3},
    }


def test_an_event_rolled_back_is_never_sent(
    listener, support_agent, django_capture_on_commit_callbacks
):
    @transaction.atomic
    def record_then_fail() -> None:
        audit.record(actor=support_agent, action="test.undone")
        raise RuntimeError

    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError):
        record_then_fail()
    assert callbacks == []


@pytest.mark.parametrize(
    ("severity", "pri"),
    [("high", 10 * 8 + 2), ("medium", 10 * 8 + 4), ("low", 10 * 8 + 5)],
)
def test_an_alert_arrives_with_its_severity_mapped(
    listener, support_agent, settings, severity, pri, django_capture_on_commit_callbacks
):
    settings.AMANAH_ALERT_SUSPEND_ON_HIGH = False
    with django_capture_on_commit_callbacks(execute=True):
        alert = alert_raise(
            hit=hit(staff_id=support_agent.pk, severity=severity), now=timezone.now()
        )
    assert alert is not None

    parsed = [_parse(frame) for frame in listener.frames(2)]
    alerts = [(p, body) for p, msgid, body in parsed if msgid == "alert"]
    assert alerts == [
        (
            pri,
            {
                "type": "alert",
                "alert_id": alert.pk,
                "time": alert.created_at.isoformat(),
                "rule": "reveal_volume",
                "severity": severity,
                "staff_id": support_agent.pk,
                "evidence": {"reveals": 15},
            },
        )
    ]
    audited = [body["action"] for _, msgid, body in parsed if msgid == "audit"]
    assert audited == ["alert.raised"]


@pytest.mark.django_db(transaction=True)
def test_a_siem_that_is_down_never_fails_the_change(settings, caplog):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    settings.AMANAH_SIEM_SYSLOG = f"tcp://127.0.0.1:{port}"
    before = siem.dropped

    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="apps.core.siem"):
        customer = make_customer()
        make_customer()
    assert time.monotonic() - started < 2 * siem.SEND_TIMEOUT + 5

    assert Customer.objects.filter(pk=customer.pk).exists()
    assert AuditEvent.objects.filter(target_id=str(customer.pk)).exists()
    assert siem.dropped > before
    failed = [r for r in caplog.records if r.getMessage() == "siem.send_failed"]
    assert failed
    assert all(r.sink == "syslog" for r in failed)  # type: ignore[attr-defined]
    siem._senders.pop(("127.0.0.1", port), None)


def test_the_file_sink_gets_one_json_line_per_event(
    settings, tmp_path, support_agent, django_capture_on_commit_callbacks
):
    path = tmp_path / "siem.jsonl"
    settings.AMANAH_SIEM_FILE = str(path)
    with django_capture_on_commit_callbacks(execute=True):
        first = audit.record(actor=support_agent, action="test.one")
        second = audit.record(actor=None, action="test.two", details={"n": 1})

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(e["seq"], e["action"], e["actor_role"]) for e in lines] == [
        (first.seq, "test.one", support_agent.role),
        (second.seq, "test.two", "system"),
    ]


def test_a_file_that_cannot_be_written_is_dropped_and_logged(
    settings, tmp_path, support_agent, django_capture_on_commit_callbacks, caplog
):
    settings.AMANAH_SIEM_FILE = str(tmp_path / "missing" / "siem.jsonl")
    with (
        caplog.at_level(logging.WARNING, logger="apps.core.siem"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        audit.record(actor=support_agent, action="test.one")
    assert [r.getMessage() for r in caplog.records] == ["siem.send_failed"]


def test_the_stream_carries_none_of_the_canary_customers_data(
    listener, settings, tmp_path, support_agent, django_capture_on_commit_callbacks
):
    path = tmp_path / "siem.jsonl"
    settings.AMANAH_SIEM_FILE = str(path)
    with django_capture_on_commit_callbacks(execute=True):
        canary = make_canary(actor=support_agent)
        alert_raise(hit=hit(staff_id=support_agent.pk), now=timezone.now())

    count = len(path.read_text().splitlines())
    assert count >= 2
    streamed = path.read_text() + b"\n".join(listener.frames(count)).decode()
    assert str(canary.pk) in streamed  # the customer is named by id only
    for value in CANARY.values():
        for form in {value, value.lower(), json.dumps(value)[1:-1]}:
            assert form not in streamed
    assert "Canary" not in streamed
    assert "Zzyzx" not in streamed


@pytest.mark.parametrize(
    "url", ["udp://siem:514", "tcp://siem", "siem:514", "tcp://:514", "tcp://s:x"]
)
def test_a_malformed_syslog_url_stops_start_up_naming_it(url):
    result = _manage("check", env={"DJANGO_DEBUG": "1", "AMANAH_SIEM_SYSLOG": url})
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "Configuration error: AMANAH_SIEM_SYSLOG must be tcp://host:port"
    ]


def test_a_relative_siem_file_stops_start_up_naming_it():
    result = _manage("check", env={"DJANGO_DEBUG": "1", "AMANAH_SIEM_FILE": "x.jsonl"})
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "Configuration error: AMANAH_SIEM_FILE must be an absolute path"
    ]


def test_a_forked_child_does_not_share_the_parents_connection():
    import os

    siem._sender("127.0.0.1", 9)  # a sender in the parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports how many senders it inherited
        os.write(write, str(len(siem._senders)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 10) == b"0"
    assert ("127.0.0.1", 9) in siem._senders
