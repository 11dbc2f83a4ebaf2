"""Security events out: audit events and alerts, one JSON line each, to a SIEM.

Two sinks, each off unless set (README, "Security events out (SIEM)"):
`AMANAH_SIEM_SYSLOG` (tcp://host:port) gets an RFC 5424 message over TCP with
octet-counting framing (RFC 6587 §3.4.1), facility authpriv; `AMANAH_SIEM_FILE` gets
the line appended. Callers send after their transaction commits; a sink that is down
never fails the caller: the event is dropped, counted and logged (`siem.send_failed`,
without its content). The JSON carries ids, codes and counts only, like the audit row.
"""

import contextlib
import json
import logging
import os
import select
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

logger = logging.getLogger(__name__)

FACILITY_AUTHPRIV = 10  # RFC 5424 §6.2.1: security/authorization messages
SEVERITY_CRITICAL, SEVERITY_WARNING, SEVERITY_NOTICE = 2, 4, 5
ALERT_SEVERITY = {
    "high": SEVERITY_CRITICAL,
    "medium": SEVERITY_WARNING,
    "low": SEVERITY_NOTICE,
}
APP_NAME = "amanah"
# A send may hold its caller this long at most (connect, then write).
SEND_TIMEOUT = 1.0
# After a failed connect, events are dropped for this long rather than each waiting
# for the timeout again.
RETRY_AFTER = 5.0


def syslog_address(url: str, *, name: str = "AMANAH_SIEM_SYSLOG") -> tuple[str, int]:
    """The (host, port) of a tcp://host:port URL. Raises ImproperlyConfigured."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        port = None
        parts = None
    if (
        parts is None
        or parts.scheme != "tcp"
        or not parts.hostname
        or port is None
        or parts.path not in {"", "/"}
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise ImproperlyConfigured(f"{name} must be tcp://host:port")
    return parts.hostname, port


class _Syslog:
    """One TCP connection per process and address, reused; reconnected on failure."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.sock: socket.socket | None = None
        self.down_until = 0.0
        self.lock = threading.Lock()

    def _peer_closed(self, sock: socket.socket) -> bool:
        # A peer that closed makes the socket readable with nothing to read; writing
        # to it would seem to succeed and lose the event.
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def send(self, frame: bytes) -> None:
        with self.lock:
            if self.sock is not None and self._peer_closed(self.sock):
                self._close()
            if self.sock is None:
                if time.monotonic() < self.down_until:
                    raise ConnectionError("siem down, retry later")
                try:
                    self.sock = socket.create_connection(
                        (self.host, self.port), timeout=SEND_TIMEOUT
                    )
                except OSError:
                    self.down_until = time.monotonic() + RETRY_AFTER
                    raise
            try:
                self.sock.settimeout(SEND_TIMEOUT)
                self.sock.sendall(frame)
            except OSError:
                # A collector that accepts but stalls: wait RETRY_AFTER, as for one
                # that refuses, rather than SEND_TIMEOUT for every event.
                self.down_until = time.monotonic() + RETRY_AFTER
                self._close()
                raise

    def _close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None


_senders: dict[tuple[str, int], _Syslog] = {}
_senders_lock = threading.Lock()
dropped = 0  # events this process could not hand on (per sink)


def _forget_after_fork() -> None:
    """A forked child opens its own connections: the parent's socket, shared, would
    interleave both processes' frames, and a lock held at the fork stays held."""
    global _senders_lock
    _senders.clear()
    _senders_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def _sender(host: str, port: int) -> _Syslog:
    with _senders_lock:
        sender = _senders.get((host, port))
        if sender is None:
            sender = _senders[(host, port)] = _Syslog(host, port)
        return sender


def syslog_frame(*, severity: int, msgid: str, when: datetime, body: str) -> bytes:
    """An RFC 5424 message, framed by its length in octets (RFC 6587 §3.4.1)."""
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    host = (socket.gethostname() or "-").replace(" ", "")[:255]
    pri = FACILITY_AUTHPRIV * 8 + severity
    message = f"<{pri}>1 {stamp} {host} {APP_NAME} {os.getpid()} {msgid} - {body}"
    data = message.encode()
    return str(len(data)).encode() + b" " + data


def enabled() -> bool:
    return bool(settings.AMANAH_SIEM_SYSLOG or settings.AMANAH_SIEM_FILE)


def emit(*, msgid: str, severity: int, when: datetime, event: dict[str, Any]) -> None:
    """Send one event to every configured sink. Never raises: a failure is logged
    with the sink's name and counted."""
    global dropped
    body = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
    if settings.AMANAH_SIEM_SYSLOG:
        try:
            host, port = syslog_address(settings.AMANAH_SIEM_SYSLOG)
            frame = syslog_frame(severity=severity, msgid=msgid, when=when, body=body)
            _sender(host, port).send(frame)
        except Exception:  # the SIEM must never fail the change
            dropped += 1
            logger.warning(
                "siem.send_failed",
                extra={"sink": "syslog", "msgid": msgid, "dropped": dropped},
            )
    if settings.AMANAH_SIEM_FILE:
        try:
            fd = os.open(
                settings.AMANAH_SIEM_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640
            )
            try:
                # One write per event: appended lines never interleave.
                os.write(fd, (body + "\n").encode())
            finally:
                os.close(fd)
        except Exception:
            dropped += 1
            logger.warning(
                "siem.send_failed",
                extra={"sink": "file", "msgid": msgid, "dropped": dropped},
            )


def audit_event_emit(
    *,
    seq: int,
    hash: str,
    created_at: datetime,
    actor_id: Any,
    actor_role: str,
    action: str,
    target_type: str,
    target_id: str,
    details: dict[str, Any],
) -> None:
    """Send one committed audit event (the row's own values, PII-free by its checks)."""
    emit(
        msgid="audit",
        severity=SEVERITY_NOTICE,
        when=created_at,
        event={
            "type": "audit",
            "seq": seq,
            "hash": hash,
            "time": created_at.astimezone(UTC).isoformat(),
            "action": action,
            "actor_id": actor_id,
            "actor_role": actor_role,
            "target_type": target_type,
            "target_id": target_id,
            "details": details,
        },
    )


def alert_emit(
    *,
    alert_id: int,
    rule: str,
    severity: str,
    staff_id: int | None,
    evidence: dict[str, Any],
    created_at: datetime,
) -> None:
    """Send one raised alert (rule, severity, staff id, evidence: ids and counts)."""
    emit(
        msgid="alert",
        severity=ALERT_SEVERITY.get(severity, SEVERITY_WARNING),
        when=created_at,
        event={
            "type": "alert",
            "alert_id": alert_id,
            "time": created_at.astimezone(UTC).isoformat(),
            "rule": rule,
            "severity": severity,
            "staff_id": staff_id,
            "evidence": evidence,
        },
    )
