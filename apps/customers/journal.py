"""The erasure journal: every erasure, appended after its commit to a file outside the
database (`AMANAH_ERASURE_JOURNAL`), so that a restore from a backup taken before it
can erase the customer again (`manage.py reapply_erasures`).

An erasure adds an `ErasureJournalPending` row in its own transaction
(`erasure_journal_add`); after the commit the same process appends the pending rows to
the file (`erasure_journal_flush`), and when that fails a Celery task tries again with
backoff, and the beat every few minutes (a process killed between its commit and the
write). So a committed erasure reaches the file, possibly twice: a line may repeat (a
crash between the write and the rows' delete), and reapplying is idempotent.

One JSON object per line and per customer, never PII: `{"v": 1, "customer": "<uuid>",
"data_key": "<uuid>", "action": "erased", "at": "<ISO time>"}`; the action is "erased",
"anonymized", "deleted" or "cleared", and a "cleared" line adds `"fields": [...]`, the
fields' names.

Lock order: the pending rows (FOR UPDATE SKIP LOCKED, by id), then the journal file's
exclusive `flock`, released before the rows' transaction commits.
"""

import fcntl
import json
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db import DatabaseError, transaction

from apps.customers.models import ErasureAction, ErasureJournalPending
from apps.customers.registry import PII_FIELD_NAMES

logger = logging.getLogger(__name__)

VERSION = 1
# Pending rows appended per transaction: each holds one erasure call's customers (a
# disposal batch, 2,000 by default), so a few tens of thousands of lines per write.
FLUSH_ROWS = 20


def erasure_journal_add(
    *,
    action: ErasureAction,
    customers: Iterable[tuple[Any, Any]],
    at: datetime,
    fields: Sequence[str] = (),
) -> None:
    """Record an erasure of `customers` ((customer id, data key id) pairs) for the
    journal, in the caller's transaction, and append it to the file once that
    transaction commits. Nothing is recorded for no customers."""
    pairs = [[_uuid_text(customer), _uuid_text(key)] for customer, key in customers]
    if not pairs:
        return
    ErasureJournalPending.objects.create(
        action=action, at=at, customers=pairs, fields=list(fields)
    )
    # Logged by Django and left to the retries when anything else goes wrong: the
    # erasure has committed whatever happens to its journal line.
    transaction.on_commit(erasure_journal_flush_after_commit, robust=True)


def _uuid_text(value: Any) -> str:
    # PostgreSQL hands UUIDs over as UUIDs; SQLite as text without dashes.
    return str(value if isinstance(value, UUID) else UUID(str(value)))


def erasure_journal_flush_after_commit() -> None:
    """Append what is pending now; when the file or the database fails, leave it to
    the retrying task (with a broker) and the beat."""
    try:
        erasure_journal_flush()
    except (OSError, DatabaseError) as exc:
        logger.warning(
            "erasure_journal.write_failed", extra={"error": type(exc).__name__}
        )
        if settings.CELERY_TASK_ALWAYS_EAGER:
            # No broker, no beat: the next erasure's flush appends these too.
            return
        # tasks imports this module: the app's one accepted cycle (STYLE.md).
        from apps.customers.tasks import erasure_journal_flush_task

        try:
            erasure_journal_flush_task.delay()
        except Exception:  # the broker is down: the beat flushes them
            logger.warning("erasure_journal.retry_not_queued")


def erasure_journal_flush() -> int:
    """Append every pending erasure to the journal file, fsynced, and delete its
    rows; rows another process is appending are skipped. Returns the lines written.
    Raises OSError when the file cannot be written (the rows stay pending)."""
    path = Path(settings.AMANAH_ERASURE_JOURNAL)
    written = 0
    while True:
        with transaction.atomic():
            rows = list(
                ErasureJournalPending.objects.select_for_update(
                    skip_locked=True
                ).order_by("id")[:FLUSH_ROWS]
            )
            if not rows:
                return written
            lines = [line for row in rows for line in _lines(row)]
            _append(path, "".join(lines).encode())
            ErasureJournalPending.objects.filter(pk__in=[r.pk for r in rows]).delete()
        written += len(lines)
        logger.info("erasure_journal.appended", extra={"lines": len(lines)})


def _lines(row: ErasureJournalPending) -> list[str]:
    at = row.at.isoformat()
    extra = {"fields": row.fields} if row.action == ErasureAction.CLEARED else {}
    return [
        json.dumps(
            {
                "v": VERSION,
                "customer": customer,
                "data_key": key,
                "action": row.action,
                "at": at,
                **extra,
            },
            separators=(",", ":"),
        )
        + "\n"
        for customer, key in row.customers
    ]


def _append(path: Path, data: bytes) -> None:
    """Append `data` to `path` under an exclusive lock and fsync it (and its directory
    when the file was empty, so a new file's entry survives a crash too). A write that
    fails is cut back off, so a half-written line never stays in front of the next."""
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            # A line cut short by a crash mid-write: end it, so it spoils only itself.
            data = b"\n" + data
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, size)
            except OSError:
                logger.warning("erasure_journal.truncate_failed")
            raise
        if size == 0:
            _fsync_directory(path.parent)
    finally:
        os.close(fd)  # releases the lock


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# Reading it back (reapply_erasures) --------------------------------------------------


@dataclass(frozen=True)
class JournalEntry:
    line: int
    customer: UUID
    action: ErasureAction
    at: datetime
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnreadableLine:
    line: int


def erasure_journal_line_count(path: Path) -> int:
    """How many lines `path` holds (a last one without its newline counts), read in
    blocks. Raises OSError."""
    count, last = 0, b"\n"
    with path.open("rb") as journal:
        while block := journal.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def erasure_journal_read(path: Path) -> Iterator[JournalEntry | UnreadableLine]:
    """Each line of the journal at `path`, in order, read as it streams (blank lines
    are skipped). Raises OSError."""
    with path.open("rb") as journal:
        for number, raw in enumerate(journal, start=1):
            if not raw.strip():
                continue
            entry = _parse(raw, number)
            yield entry if entry is not None else UnreadableLine(number)


def _parse(raw: bytes, number: int) -> JournalEntry | None:
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or data.get("v") != VERSION:
            return None
        action = ErasureAction(data["action"])
        customer = UUID(data["customer"])
        UUID(data["data_key"])
        at = datetime.fromisoformat(data["at"])
        fields: tuple[str, ...] = ()
        if action == ErasureAction.CLEARED:
            fields = tuple(data["fields"])
            if not fields or not set(fields) <= set(PII_FIELD_NAMES):
                return None
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if at.tzinfo is None:
        return None
    return JournalEntry(
        line=number, customer=customer, action=action, at=at, fields=fields
    )
