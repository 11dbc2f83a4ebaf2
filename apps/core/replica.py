"""Heavy reads on a streaming replica (README, "Read replica").

`DATABASE_REPLICA_URL` adds the `replica` database alias. Reads go to it only inside
`with replica_reads():` (or a stream made by `replica_stream`), which the reports,
exports, audience streams and the cockpit put around their reads; everything else,
every write, and every read inside a transaction on the primary stays on the primary.

A block uses the replica only while its replay lag is within
`AMANAH_REPLICA_MAX_LAG_S` and it answers; otherwise the block reads from the primary
and a `replica.fallback` line is logged. The lag is asked at most every
`CHECK_EVERY_S` seconds per process (`NO_ANSWER_RETRY_S` after no answer), not per
query. A session that sent a change (any unsafe method) reads from the primary for
the lag bound (plus `CHECK_EVERY_S`) after it (`ReplicaPinMiddleware`): its next
page shows its own write.
"""

import contextvars
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest, HttpResponse

logger = logging.getLogger(__name__)

T = TypeVar("T")

REPLICA = "replica"
# How long one answer about the replica's lag stands, per process.
CHECK_EVERY_S = 2.0
# After no answer, how long before asking again (a blackholed host costs its whole
# connect timeout each time).
NO_ANSWER_RETRY_S = 10.0
# The session key holding, as a Unix time, until when the session reads the primary.
PIN_KEY = "amanah_replica_pin_until"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# The primary's WAL position, asked just before the standby (`LAG_SQL`); NULL on a
# database in recovery (none then: the lag is counted from the last commit).
PRIMARY_LSN_SQL = (
    "SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_flush_lsn() END"
)
# Seconds behind the primary, on the standby, given the primary's WAL position of a
# moment before. A standby that has replayed up to it is caught up (0), however old its
# last replayed commit: an idle primary commits nothing new, though nothing is missing.
# One behind it (replaying slowly, or its connection stalled while it still says
# "streaming") counts from its last replayed commit; one that never replayed one is
# infinitely behind. A database not in recovery (a promoted standby, the tests'
# mirror) is 0.
LAG_SQL = """
SELECT CASE
  WHEN NOT pg_is_in_recovery() THEN 0
  WHEN pg_last_wal_replay_lsn() >= %s::pg_lsn THEN 0
  ELSE COALESCE(
    EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8,
    'Infinity'::float8)
END
"""

# The routing of this thread or task: the alias reads go to, set by `replica_reads`.
_reads_alias: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "amanah_replica_reads_alias", default=None
)
# The request being served (set by ReplicaPinMiddleware), to see its session's pin.
_request: contextvars.ContextVar[HttpRequest | None] = contextvars.ContextVar(
    "amanah_replica_request", default=None
)

# The last answer about each replica, per process (not shared: each process asks its
# own connection, and an answer is only worth a couple of seconds):
# alias -> (when asked, monotonic; lag in seconds, or None when it did not answer).
_checked: dict[str, tuple[float, float | None]] = {}
_checked_lock = threading.Lock()


def replica_configured() -> bool:
    return REPLICA in settings.DATABASES


def replica_lag_seconds(alias: str = REPLICA) -> float:
    """The replica's replay lag in seconds, asked now (`LAG_SQL`); 0 off PostgreSQL.
    Raises DatabaseError when it does not answer."""
    conn = connections[alias]
    if conn.vendor != "postgresql":
        return 0.0
    with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
        cursor.execute(PRIMARY_LSN_SQL)
        primary_lsn = cursor.fetchone()[0]
    # A replica that accepts the connection but hangs must not hang the request.
    with transaction.atomic(using=alias), conn.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = '2s'")
        cursor.execute(LAG_SQL, [primary_lsn])
        return float(cursor.fetchone()[0])


def _lag_cached(alias: str) -> float | None:
    now = time.monotonic()
    with _checked_lock:
        found = _checked.get(alias)
    if found is not None:
        asked_at, known = found
        stands = CHECK_EVERY_S if known is not None else NO_ANSWER_RETRY_S
        if now - asked_at < stands:
            return known
    lag: float | None
    try:
        lag = replica_lag_seconds(alias)
    except DatabaseError as exc:
        lag = None
        logger.warning(
            "replica.fallback",
            extra={"alias": alias, "reason": "no_answer", "error": type(exc).__name__},
        )
        # Forget the broken connection: the next check connects afresh.
        connections[alias].close()
    else:
        bound = float(settings.AMANAH_REPLICA_MAX_LAG_S)
        if lag > bound:
            logger.warning(
                "replica.fallback",
                extra={
                    "alias": alias,
                    "reason": "lag",
                    "lag_s": lag if math.isfinite(lag) else -1.0,
                    "max_lag_s": bound,
                },
            )
    with _checked_lock:
        _checked[alias] = (time.monotonic(), lag)
    return lag


def replica_checks_forget() -> None:
    """Drop the remembered answers (tests; after changing the lag bound)."""
    with _checked_lock:
        _checked.clear()


def _pinned() -> bool:
    request = _request.get()
    session = getattr(request, "session", None)
    if session is None:
        return False
    return float(session.get(PIN_KEY, 0)) > time.time()


def _alias_choose() -> str:
    """Where a new block's reads go: the replica when there is one, no transaction on
    the primary is open here, the session is not pinned and the replica is fresh."""
    current = _reads_alias.get()
    if current is not None:
        return current  # Nested: one block, one database.
    if not replica_configured():
        return DEFAULT_DB_ALIAS
    # Inside a transaction on the primary, its own uncommitted writes are there only.
    if connections[DEFAULT_DB_ALIAS].in_atomic_block or _pinned():
        return DEFAULT_DB_ALIAS
    lag = _lag_cached(REPLICA)
    if lag is None or lag > float(settings.AMANAH_REPLICA_MAX_LAG_S):
        return DEFAULT_DB_ALIAS
    return REPLICA


def _routed() -> str:
    alias = _reads_alias.get()
    if alias is None:
        return DEFAULT_DB_ALIAS
    if alias != DEFAULT_DB_ALIAS and connections[DEFAULT_DB_ALIAS].in_atomic_block:
        # A transaction opened inside the block reads what it wrote.
        return DEFAULT_DB_ALIAS
    return alias


@contextmanager
def replica_reads() -> Iterator[str]:
    """Reads inside the block go to the replica when it is fresh, else the primary;
    yields the alias chosen. Writes always go to the primary."""
    token = _reads_alias.set(_alias_choose())
    try:
        yield _reads_alias.get() or DEFAULT_DB_ALIAS
    finally:
        _reads_alias.reset(token)


def replica_stream(make: Callable[[], Iterable[T]]) -> Iterator[T]:
    """`make()`'s items, each produced with reads routed as in `replica_reads`, for a
    StreamingHttpResponse (which iterates after the view has returned). The database
    is chosen now, in the view (with its request's pin); the routing holds only while
    an item is being produced, never between items, so nothing else the thread does
    meanwhile, nor after an abandoned stream, reads from the replica."""
    alias = _alias_choose()

    def steps() -> Iterator[T]:
        iterator: Iterator[T] | None = None
        try:
            while True:
                token = _reads_alias.set(alias)
                try:
                    if iterator is None:
                        iterator = iter(make())
                    item = next(iterator)
                except StopIteration:
                    return
                finally:
                    _reads_alias.reset(token)
                yield item
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                token = _reads_alias.set(alias)
                try:
                    close()
                finally:
                    _reads_alias.reset(token)

    return steps()


def read_connection() -> BaseDatabaseWrapper:
    """The connection reads go to here and now: the replica inside a `replica_reads`
    block that chose it, else the primary. For raw cursors and COPY."""
    return connections[_routed()]


class ReplicaRouter:
    """Reads to the alias `replica_reads` chose, the primary outside it; writes and
    migrations to the primary only."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return _routed()

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        # Rows read from the replica are the primary's rows.
        if {obj1._state.db, obj2._state.db} <= {DEFAULT_DB_ALIAS, REPLICA}:
            return True
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if db == REPLICA else None


class ReplicaPinMiddleware:
    """Pins a signed-in session to the primary for the lag bound after each unsafe
    request (`PIN_KEY`, a Unix time): the page it is sent to next shows its write.
    Costs nothing on safe requests; on unsafe ones, one more key in a session save."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            response = self.get_response(request)
        finally:
            _request.reset(token)
        session = getattr(request, "session", None)
        if (
            request.method in UNSAFE_METHODS
            and replica_configured()
            # A signed-in session that came with the request (or sign-in made):
            # never a new session for an API client authenticated by a token.
            and session is not None
            and session.session_key is not None
            and request.user.is_authenticated
        ):
            # The replica may be up to the bound behind, and a fresh answer about
            # it up to CHECK_EVERY_S old.
            until = time.time() + settings.AMANAH_REPLICA_MAX_LAG_S + CHECK_EVERY_S
            session[PIN_KEY] = round(until, 1)
        return response
