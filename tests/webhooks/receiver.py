"""A real HTTP receiver on a local port, started and stopped by a test."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """Keeps every request it reads (headers, body); answers `status`. With
    `die_on=n`, the n-th request is read in full, then the receiver dies before
    answering it (the connection cut, the server stopped)."""

    def __init__(
        self, port: int | None = None, status: int = 204, die_on: int | None = None
    ):
        self.port = port or free_port()
        self.status = status
        self.die_on = die_on
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.server: ThreadingHTTPServer | None = None
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.received.append((dict(self.headers.items()), body))
                    dies = receiver.die_on == len(receiver.received)
                if dies:
                    # Dead before the sender hears of it: a test that checks right
                    # after its send sees it so, however the threads are scheduled.
                    server, receiver.server = receiver.server, None
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    threading.Thread(target=_close, args=(server,)).start()
                    return
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        server, self.server = self.server, None
        _close(server)

    def events(self) -> list[dict]:
        return [
            {"id": headers["webhook-id"], **json.loads(body)}
            for headers, body in self.received
        ]


def processed_once(events: list[dict]) -> list[dict]:
    """What a receiver that deduplicates by `webhook-id` processes: each id's first
    arrival, in arrival order."""
    seen: set[str] = set()
    first = []
    for event in events:
        if event["id"] not in seen:
            seen.add(event["id"])
            first.append(event)
    return first


def _close(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()
