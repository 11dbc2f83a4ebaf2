"""Import of existing customers from a CSV file: each row through the API's own
validation (`CustomerInputSerializer`, then the customer services' checks), idempotent
by the email's blind index, streamed, in batches.

A batch is read, looked up (one query for the customers its emails name) and
validated before anything is written: the rows of customers found here, those of new
customers in a worker process (`_new_rows_prepare`: validated and sealed, no query),
while the batch before is written. Then, on the writer thread (`_Writer`), its new
customers are inserted (`customers_insert_prepared`: keys and rows by COPY), the
customers that changed updated through `customer_update`, its consents recorded in a
few statements (`consents_import_bulk`) and one audit event written, all in one
transaction. A refused row never stops its batch; a batch the database refuses for
its rows' values (IntegrityError, DataError) or a service refuses (DomainError) is
imported again one row at a time, each its own batch; one undone by a deadlock or a
serialization failure is written again (`WRITE_ATTEMPTS`); any other database error
(a lost connection, a timeout) stops the import, which a rerun finishes.

Lock order (apps/core/db.py): new customers inserted first, in the order of their
email's blind index (an insert can wait on another transaction's uncommitted row with
the same email); then the batch's existing customers, in id order, then their data
keys and consent state, then the audit chain (last).
"""

import collections
import csv
import ctypes
import dataclasses
import functools
import io
import logging
import multiprocessing
import os
import queue
import re
import signal
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from typing import IO, Any, cast
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import (
    EmailValidator,
    MaxLengthValidator,
    ProhibitNullCharactersValidator,
    validate_email,
)
from django.db import (
    DatabaseError,
    DataError,
    IntegrityError,
    connection,
    connections,
    transaction,
)
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import ISO_8601, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.settings import api_settings
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from apps.access.api import CustomerInputSerializer
from apps.accounts.models import User
from apps.audit import services as audit
from apps.consent.selectors import purpose_list_active
from apps.consent.services import consents_import_bulk, consents_import_refusals
from apps.core.db import advisory_session_lock
from apps.core.errors import DomainError
from apps.crypto.bulk import sealing_forks
from apps.crypto.keys import key_scope, open_with, seal_with
from apps.crypto.masterkeys import master_key_for_wrapping
from apps.crypto.services import data_key_create, data_key_destroy
from apps.customers.errors import CustomerError
from apps.customers.models import Customer
from apps.customers.selectors import customer_email_key, customers_by_email_keys
from apps.customers.services import (
    PreparedCustomers,
    customer_changes,
    customer_update,
    customers_insert_prepared,
    customers_lock_bulk,
    customers_prepare_bulk,
)
from apps.imports.models import ImportChunk, ImportJob, ImportRowError, ImportStatus

logger = logging.getLogger(__name__)

CONSENT = "consent:"
CONSENT_AT = "consent_at:"
ANSWERS = {"granted": True, "withdrawn": False}
BATCH_SIZE = 2000
# A batch that meets a deadlock or a serialization failure is written again this many
# times at most; a worker's answer is awaited this long (seconds) at most.
WRITE_ATTEMPTS = 3
WORKER_TIMEOUT = 600
# SQLSTATEs of a transaction PostgreSQL undid for another's sake: try it again.
_RETRYABLE = {"40P01", "40001"}


class ImportHeaderError(DomainError):
    code = "bad_header"


class ImportWorkspaceError(DomainError):
    """The import's working file (`_EmailsSeen`) cannot be made: nothing was read."""

    code = "no_workspace"


@dataclasses.dataclass
class RowError:
    line: int
    field: str
    code: str
    message: str


@dataclasses.dataclass
class ImportResult:
    imported: int = 0
    updated: int = 0
    skipped: int = 0
    refused: int = 0

    @property
    def rows(self) -> int:
        return self.imported + self.updated + self.skipped + self.refused

    def summary(self) -> str:
        return (
            f"imported {self.imported}, updated {self.updated}, "
            f"skipped {self.skipped}, refused {self.refused}"
        )


class _DryRun(Exception):
    """Rolls a dry run's batch back once it is counted."""


class ImportStopped(Exception):
    """The import could not go on from `line` (not UTF-8, a malformed CSV record, a
    full disk under the working file): the rows before it were imported and audited
    (`result`). Its text, ending with `remedy`, is what the command and the upload
    page both say."""

    def __init__(
        self,
        *,
        line: int,
        reason: str,
        result: "ImportResult",
        remedy: str = "fix the file",
        code: str = "unreadable",
    ):
        super().__init__(reason)
        self.line = line
        self.reason = reason
        self.result = result
        self.remedy = remedy
        self.code = code  # "unreadable" (the file) or "no_workspace" (the server)

    def __str__(self) -> str:
        return (
            f"Stopped at line {self.line} ({self.reason}). The rows before it were "
            f"read ({self.result.summary()}); {self.remedy} and import it again: "
            "rows already imported are skipped."
        )


class _WorkspaceFailed(Exception):
    """The import's working file (`_EmailsSeen`) could not take the batch starting
    on `line`: the disk under TMPDIR is full, or failed."""

    def __init__(self, *, line: int, why: str):
        super().__init__(why)
        self.line = line
        self.why = why


NOT_UTF8 = "not UTF-8 text: save the file as CSV UTF-8"


class _NotUTF8(Exception):
    """A line (`line`, counted from 1) whose bytes are not UTF-8."""

    def __init__(self, line: int):
        super().__init__(line)
        self.line = line


Error = tuple[str, str, str]  # field, code, message


def customers_import_header_check(fieldnames: Iterable[str] | None) -> list[str]:
    """The purpose codes the header's consent columns name. Raises ImportHeaderError
    (unknown column, missing email, a duplicate) naming the column, never a value."""
    names = list(fieldnames or [])
    if "email" not in names:
        raise ImportHeaderError("The header has no email column.", field="email")
    fields = set(CustomerInputSerializer().fields)
    purposes = set(purpose_list_active().values_list("code", flat=True))
    codes: list[str] = []
    for name in names:
        if names.count(name) > 1:
            raise ImportHeaderError(f"The column {name!r} appears twice.", field=name)
        if name in fields:
            continue
        for prefix in (CONSENT, CONSENT_AT):
            if name.startswith(prefix) and name[len(prefix) :] in purposes:
                code = name[len(prefix) :]
                if code not in codes:
                    codes.append(code)
                break
        else:
            raise ImportHeaderError(f"Unknown column {name!r}.", field=name)
    return codes


def _consents(
    row: dict[str, Any], codes: list[str], errors: list[Error]
) -> list[tuple[str, bool, datetime]]:
    answers: list[tuple[str, bool, datetime]] = []
    now = timezone.now()
    for code in codes:
        answer = (row.get(CONSENT + code) or "").strip().lower()
        when = (row.get(CONSENT_AT + code) or "").strip()
        if not answer:
            if when:
                errors.append((CONSENT + code, "required", "This field is required."))
            continue
        if answer not in ANSWERS:
            errors.append((CONSENT + code, "invalid", "Use granted or withdrawn."))
            continue
        at = _parse_when(when) if when else None
        if at is None:
            errors.append(
                (CONSENT_AT + code, "invalid", "Give an ISO 8601 date and time.")
            )
            continue
        if timezone.is_naive(at):
            at = at.replace(tzinfo=UTC)
        if at > now:
            errors.append((CONSENT_AT + code, "future", "This time is in the future."))
            continue
        answers.append((code, ANSWERS[answer], at))
    return answers


@functools.lru_cache(maxsize=1024)
def _parse_when(when: str) -> datetime | None:
    """`parse_datetime`, None for a value it refuses; cached: a file's answers are
    often given at the same few times."""
    try:
        return parse_datetime(when)
    except ValueError:
        return None


def _serializer_errors(errors: dict[str, Any]) -> list[Error]:
    found = []
    for field, details in errors.items():
        for detail in details if isinstance(details, list) else [details]:
            found.append((field, getattr(detail, "code", "invalid"), str(detail)))
    return found


def _domain_error(exc: DomainError) -> Error:
    return (exc.field or "", exc.code, str(exc))


# A date as `parse_date` reads it first (`date.fromisoformat`), in its plainest form.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# What DRF's CharField refuses in any text: NUL and surrogates.
_REFUSED_CHARS = re.compile("[\x00\ud800-\udfff]")
_CHAR, _EMAIL, _DATE = "char", "email", "date"
_KNOWN_VALIDATORS = (
    MaxLengthValidator,
    ProhibitNullCharactersValidator,
    ProhibitSurrogateCharactersValidator,
    EmailValidator,
)


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What the API's serializer field `name` checks, read from the field itself."""

    name: str
    kind: str
    required: bool
    allow_blank: bool = False
    allow_null: bool = False
    max_length: int | None = None


def _plan(name: str, field: Any) -> _Plan | None:
    """The checks of a serializer field the fast path knows exactly (CharField,
    EmailField, an ISO 8601 DateField, with only the validators DRF gives them), or
    None: rows are then always validated by the serializer. A field with a default
    or a source of its own is not known either."""
    if any(not isinstance(v, _KNOWN_VALIDATORS) for v in field.validators):
        return None
    if field.default is not serializers.empty or field.source != name:
        return None
    if isinstance(field, serializers.DateField):
        formats = getattr(field, "input_formats", api_settings.DATE_INPUT_FORMATS)
        if type(field) is not serializers.DateField or list(formats) != [ISO_8601]:
            return None
        return _Plan(name, _DATE, field.required, allow_null=field.allow_null)
    if type(field) not in (serializers.CharField, serializers.EmailField):
        return None
    if not field.trim_whitespace or field.min_length is not None or field.allow_null:
        return None
    kind = _EMAIL if isinstance(field, serializers.EmailField) else _CHAR
    return _Plan(name, kind, field.required, field.allow_blank, False, field.max_length)


class _Validator:
    """The API's serializer, built once (a DRF serializer copies its fields each time
    it is made) and run on each row as `is_valid()` runs it (`run_validation`).

    Most rows take a faster path first (`fast`): the same checks, read from the
    serializer's own fields (lengths, blanks, required, NUL and surrogates, Django's
    email validator, ISO dates), without DRF's machinery per field. It only accepts:
    any row it does not accept (a refusal, anything unusual) goes through the
    serializer, so every refusal, its fields, codes and messages, is the
    serializer's own; tests/imports/test_validation.py proves both paths equal on a
    corpus of values per field."""

    def __init__(
        self, serializer: type[serializers.Serializer] = CustomerInputSerializer
    ) -> None:
        self.full = serializer()
        self.partial = serializer(partial=True)
        self.names = frozenset(self.full.fields)
        plans = [_plan(name, field) for name, field in self.full.fields.items()]
        # One field the fast path does not know, or a check of the serializer's own
        # (`validate`, `validate_<field>`), sends every row to the serializer.
        known = [plan for plan in plans if plan is not None]
        validate = type(self.full).validate
        own_checks = validate is not serializers.Serializer.validate or any(
            hasattr(self.full, f"validate_{name}") for name in self.names
        )
        self.plans: list[_Plan] | None = (
            known if len(known) == len(plans) and not own_checks else None
        )

    def fast(self, fields: dict[str, Any], *, partial: bool) -> dict[str, Any] | None:
        """The serializer's `validated_data` for `fields`, or None: let the
        serializer answer."""
        if self.plans is None:
            return None
        out: dict[str, Any] = {}
        for plan in self.plans:
            name = plan.name
            if name not in fields:
                if plan.required and not partial:
                    return None
                continue
            value = fields[name]
            if value is None:
                if plan.kind == _DATE and plan.allow_null:
                    out[name] = None
                    continue
                return None
            if type(value) is not str:
                return None
            if plan.kind == _DATE:
                if not _ISO_DATE.fullmatch(value):
                    return None
                try:
                    out[name] = date.fromisoformat(value)
                except ValueError:
                    return None
                continue
            text = value.strip()
            if not text:
                if not plan.allow_blank:
                    return None
                out[name] = ""
                continue
            if plan.max_length is not None and len(text) > plan.max_length:
                return None
            if not text.isascii() and _REFUSED_CHARS.search(text):
                return None
            if "\x00" in text:
                return None
            if plan.kind == _EMAIL:
                try:
                    validate_email(text)
                except DjangoValidationError:
                    return None
            out[name] = text
        return out

    def validate(
        self, fields: dict[str, Any], *, partial: bool
    ) -> tuple[dict[str, Any], list[Error]]:
        data = self.fast(fields, partial=partial)
        if data is not None:
            return data, []
        serializer = self.partial if partial else self.full
        try:
            return dict(serializer.run_validation(fields)), []
        except ValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {"": exc.detail}
            return {}, _serializer_errors(detail)


@dataclasses.dataclass
class _Row:
    line: int
    raw: dict[str, Any]
    key: str | None  # the email's blind index
    customer: Customer | None = None
    customer_id: Any = None  # the existing customer's, or the new one's once written
    data: dict[str, Any] = dataclasses.field(default_factory=dict)
    changes: dict[str, Any] = dataclasses.field(default_factory=dict)
    answers: list[tuple[str, bool, datetime]] = dataclasses.field(default_factory=list)
    errors: list[Error] = dataclasses.field(default_factory=list)
    duplicate: bool = False  # its email is on an earlier row of the file


DUPLICATE: Error = (
    "email",
    "duplicate_in_file",
    "This email address is on an earlier row of the file: only the first is imported.",
)


def _no_workspace(why: str | None, remedy: str) -> ImportWorkspaceError:
    return ImportWorkspaceError(
        f"Cannot make the import's working file in {tempfile.gettempdir()} "
        f"({why}): {remedy}."
    )


class _EmailsSeen:
    """The emails of the file's rows so far, each as 96 bits of its blind index, so
    that a second row with one is refused: no email is on two batches, and a batch's
    lookup never needs one still being written. Kept in a SQLite database (the
    standard library's) in a file of the temporary directory (`TMPDIR`), unlinked
    as soon as it is open (the system frees it when it is closed or the process
    dies), not in memory: a set of them grew the process by some 100 bytes a row, a
    gigabyte for ten million; SQLite keeps 2 MB of its pages in memory, and about
    5 µs a row goes to it. Not PostgreSQL's temporary table: the importing
    connection runs each statement in a transaction of its own, which a
    transaction-pooling PgBouncer may send to another server connection."""

    def __init__(self) -> None:
        try:
            handle, path = tempfile.mkstemp(prefix="amanah-import-", suffix=".sqlite3")
        except OSError as exc:
            raise _no_workspace(
                exc.strerror, "set TMPDIR to a writable directory"
            ) from None
        try:
            self.db = sqlite3.connect(path, isolation_level=None)
        finally:
            os.unlink(path)
            os.close(handle)
        try:
            self.db.execute("PRAGMA journal_mode = OFF")
            self.db.execute("PRAGMA synchronous = OFF")
            self.db.execute("CREATE TABLE seen (k BLOB PRIMARY KEY) WITHOUT ROWID")
        except sqlite3.OperationalError as exc:  # a full disk: SQLite writes here
            self.db.close()
            raise _no_workspace(
                str(exc), "free space there or set TMPDIR to a larger disk"
            ) from None

    def mark(self, rows: list[_Row]) -> None:
        """Mark each row whose email is on an earlier row (of these or of a batch
        before) `duplicate`, and remember the others' emails. Raises
        _WorkspaceFailed when SQLite cannot write (a full or failing disk)."""
        try:
            self.db.execute("BEGIN")
            for row in rows:
                if row.key is not None:
                    inserted = self.db.execute(
                        "INSERT OR IGNORE INTO seen (k) VALUES (?)",
                        (bytes.fromhex(row.key[:24]),),
                    ).rowcount
                    row.duplicate = not inserted
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            # SQLite's message names no value ("database or disk is full").
            raise _WorkspaceFailed(line=rows[0].line, why=str(exc)) from None

    def close(self) -> None:
        self.db.close()


def _row_key(row: dict[str, Any]) -> str | None:
    email = row.get("email")
    return customer_email_key(email=email) if isinstance(email, str) else None


def _validate(row: _Row, *, codes: list[str], validator: _Validator) -> None:
    """Fill in what the row would write, or its errors: nothing is written here."""
    raw = row.raw
    if None in raw:  # csv.DictReader's key for cells past the header's
        row.errors.append(
            ("", "extra_fields", "The row has more fields than the header.")
        )
        return
    fields = {
        k: ("" if v is None else v) for k, v in raw.items() if k in validator.names
    }
    if not (fields.get("email") or "").strip():
        row.errors.append(("email", "required", "This field is required."))
        return
    if row.customer is not None:
        # A blank (or missing) cell says nothing: it never clears what is stored.
        fields = {k: v for k, v in fields.items() if v.strip()}
    elif fields.get("date_of_birth") == "":
        fields["date_of_birth"] = None
    row.data, row.errors = validator.validate(fields, partial=row.customer is not None)
    row.answers = _consents(raw, codes, row.errors)
    if row.errors or row.customer is None:
        return
    try:
        row.changes = customer_changes(customer=row.customer, data=row.data)
    except CustomerError as exc:
        row.errors.append(_domain_error(exc))


def _no_values(errors: list[Error], row: dict[str, Any]) -> list[Error]:
    """Errors as written to the errors file: a message that holds any of the row's
    values (a framework message may quote it) is replaced by its code."""
    values = [v.strip() for v in row.values() if isinstance(v, str) and v.strip()]
    return [
        (field, code, code if any(v in message for v in values) else message)
        for field, code, message in errors
    ]


@dataclasses.dataclass
class _Batch:
    actor: User | None
    codes: list[str]
    dry_run: bool
    result: ImportResult
    validator: _Validator
    on_error: Callable[[RowError], None] | None
    audit_details: dict[str, Any]


def _batch_import(batch: _Batch, rows: list[_Row]) -> None:
    """Validate, then write one batch in one transaction and count it."""
    _batch_finish(batch, _batch_prepare(batch, rows, pool=None))


# A new row's outcome from `_new_rows_prepare`: its errors and consent answers.
_Outcome = tuple[list[Error], list[tuple[str, bool, datetime]]]
_NewRowsJob = tuple[list[str], int | None, list[dict[str, Any]]]


@dataclasses.dataclass
class _Pending:
    """A batch read, looked up and handed to validation; `answer` gives its new rows'
    outcomes and their sealed customers (from a worker process, or made here)."""

    rows: list[_Row]
    new: list[_Row]
    answer: Callable[[], tuple[list[_Outcome], PreparedCustomers]]


def _batch_prepare(batch: _Batch, rows: list[_Row], *, pool: Any) -> _Pending:
    """Look the batch's customers up (one query) and validate the rows of those
    found; the other rows (new customers: no query needed) are validated and sealed
    by `_new_rows_prepare`, in `pool` (a worker process) when given. Nothing is
    written."""
    new: list[_Row] = []
    with key_scope():
        found = customers_by_email_keys(keys=[r.key for r in rows if r.key])
        for row in rows:
            if row.duplicate:
                row.errors = [DUPLICATE]
                continue
            row.customer = found.get(row.key) if row.key else None
            if row.customer is None:
                new.append(row)
                continue
            row.customer_id = row.customer.pk
            _validate(row, codes=batch.codes, validator=batch.validator)
        _consent_refusals(rows)
    if not new:
        empty: tuple[list[_Outcome], PreparedCustomers] = (
            [],
            PreparedCustomers(results=[], table=[], keys=[], kek_version=0),
        )
        return _Pending(rows, new, lambda: empty)
    # The master key in use, read for each batch here (a worker makes no query): a
    # rotation during an import wraps the next batches' keys under the new version.
    version = master_key_for_wrapping()[1]
    job: _NewRowsJob = (batch.codes, version, [row.raw for row in new])
    if pool is None:
        done = _new_rows_prepare(job)
        return _Pending(rows, new, lambda: done)
    waiting = pool.submit(_new_rows_prepare, job)
    return _Pending(
        rows, new, functools.partial(waiting.result, timeout=WORKER_TIMEOUT)
    )


_worker_validator: "_Validator | None" = None


def _new_rows_prepare(job: _NewRowsJob) -> tuple[list[_Outcome], PreparedCustomers]:
    """Validate rows of new customers (the API's serializer, the consent columns,
    the customer services' checks) and seal the valid ones: CPU only, no query when
    the master key version is given, so a worker process can do it. Returns each
    row's outcome, and the sealed customers of the rows without errors, in order."""
    global _worker_validator
    codes, version, raws = job
    if _worker_validator is None:
        _worker_validator = _Validator()
    rows = [_Row(line=0, raw=raw, key=None) for raw in raws]
    for row in rows:
        _validate(row, codes=codes, validator=_worker_validator)
    valid = [row for row in rows if not row.errors]
    prepared = customers_prepare_bulk(
        rows=[row.data for row in valid], kek_version=version
    )
    made: list[UUID | CustomerError] = []
    for row, result in zip(valid, prepared.results, strict=True):
        if isinstance(result, CustomerError):
            # A DomainError does not travel between processes: its fields do.
            row.errors.append(_domain_error(result))
        else:
            made.append(result)
    prepared.results = made
    return [(row.errors, row.answers) for row in rows], prepared


def _new(rows: list[_Row]) -> list[_Row]:
    """The rows that create a customer: valid, and no customer has their email."""
    return [r for r in rows if not r.errors and r.customer is None]


def _retryable(exc: DatabaseError) -> bool:
    """A deadlock or serialization failure: PostgreSQL undid the transaction for
    another's sake, and the same writes may succeed now."""
    return getattr(exc.__cause__, "sqlstate", None) in _RETRYABLE


def _fresh(rows: list[_Row]) -> list[_Row]:
    """The rows as read, before any lookup, validation or write."""
    return [
        _Row(line=r.line, raw=r.raw, key=r.key, duplicate=r.duplicate) for r in rows
    ]


def _batch_finish(batch: _Batch, pending: _Pending, *, attempt: int = 1) -> None:
    """Write a prepared batch in one transaction and count it. A batch undone by a
    deadlock or a serialization failure is written again (`WRITE_ATTEMPTS` in all);
    rows the database refuses as a batch for their values (IntegrityError,
    DataError) or a service refuses (DomainError) are tried again one by one. Any
    other database error (a lost connection, a timeout) is raised: the import
    stops, and a rerun is safe."""
    outcomes, prepared = pending.answer()
    for row, (errors, answers) in zip(pending.new, outcomes, strict=True):
        row.errors, row.answers = errors, answers
    rows = pending.rows
    with key_scope():
        counts: dict[str, int] | None
        try:
            counts = _batch_write(batch, rows, prepared)
        except DatabaseError as exc:
            if _retryable(exc) and attempt < WRITE_ATTEMPTS:
                logger.warning(
                    "customers.import_batch_retried",
                    extra={"first_line": rows[0].line, "error": type(exc).__name__},
                )
                fresh = _batch_prepare(batch, _fresh(rows), pool=None)
                _batch_finish(batch, fresh, attempt=attempt + 1)
                return
            if not isinstance(exc, IntegrityError | DataError):
                raise
            counts = _batch_refused(batch, rows, exc)
        except DomainError as exc:
            counts = _batch_refused(batch, rows, exc)
    if counts is None:
        return  # imported row by row, each counted
    result = batch.result
    for name, count in counts.items():
        setattr(result, name, getattr(result, name) + count)
    for row in rows:
        if row.errors:
            result.refused += 1
            if batch.on_error is not None:
                for error in _no_values(row.errors, row.raw):
                    batch.on_error(RowError(row.line, *error))


def _batch_refused(
    batch: _Batch, rows: list[_Row], exc: Exception
) -> dict[str, int] | None:
    """A batch refused for its rows' values: a row alone is refused (empty counts);
    the rows of a larger batch are imported one by one, each its own batch (None:
    counted already)."""
    if len(rows) == 1:
        rows[0].errors.append(_write_error(exc))
        logger.warning(
            "customers.import_row_refused",
            extra={"line": rows[0].line, "error": type(exc).__name__},
        )
        return {}
    logger.warning(
        "customers.import_batch_row_by_row",
        extra={"first_line": rows[0].line, "error": type(exc).__name__},
    )
    for row in _fresh(rows):
        _batch_import(batch, [row])
    return None


def _worker_init(parent: int) -> None:
    """A worker process forked from the import (`parent`'s pid): it makes no query.

    The database connections it inherited are its parent's, one of them holding an
    upload job's session lock: their sockets are closed here (each descriptor made
    /dev/null, so that its number stays taken; closing the child's copy sends
    nothing to the server), and the connection objects kept referenced so that no
    garbage collection writes to them (a worker ends with `os._exit`). A worker
    dies with its parent (Linux's parent-death signal, or a thread watching the
    parent's pid): none keeps running, nor anything open, after the import's
    process is killed. Signals as a plain process takes them, not as its parent's
    handlers (a bench's, a Celery worker's) would: the pool stops it with SIGTERM,
    and a Ctrl-C reaches the command, which stops the pool."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(parent)
    devnull = os.open(os.devnull, os.O_RDWR)
    for conn in connections.all(initialized_only=True):
        inherited = conn.connection
        conn.connection = None
        if inherited is None:
            continue
        _inherited.append(inherited)
        pgconn = getattr(inherited, "pgconn", None)
        fd = getattr(pgconn, "socket", -1) if pgconn is not None else -1
        if isinstance(fd, int) and fd >= 0:
            os.dup2(devnull, fd)
    os.close(devnull)


_inherited: list[Any] = []
_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """End this process when `parent` ends."""
    if os.getppid() != parent:
        os._exit(1)  # the parent died before this line
    if _parent_death_signal():
        if os.getppid() != parent:  # it died before the call
            os._exit(1)
        return

    # Not Linux: watch the parent's pid.
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, name="import-worker-watch", daemon=True).start()


def _parent_death_signal() -> bool:
    """Have Linux kill this process when its parent ends (PR_SET_PDEATHSIG); False
    where that is not offered."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def _pool_stop(pool: Any, *, failed: bool) -> None:
    """Shut the worker processes down; after an error, kill them first: one that
    hangs (or waits on a lock copied by the fork) must not hold the import."""
    if failed:
        for process in list(getattr(pool, "_processes", {}).values()):
            if process.is_alive():
                process.kill()
    pool.shutdown(wait=True, cancel_futures=True)


def import_workers() -> int:
    """How many worker processes an import validates and seals new customers in,
    besides its own (which reads the file, looks customers up and writes): one per
    core but one. None on a single core, in a daemonic process (which may have no
    children), or when the key ring is an HSM, whose session must not cross a
    fork."""
    cores = os.cpu_count() or 1
    if cores < 2 or multiprocessing.current_process().daemon or not sealing_forks():
        return 0
    if not _forkable():
        return 0
    return cores - 1


def _forkable() -> bool:
    """True if this process runs one thread: a fork copies every lock held at that
    moment, and a lock another thread held (a logging handler's, the SIEM sender's,
    a library's) would never be released in the child, which could hang on it."""
    return threading.active_count() == 1


def _write_error(exc: Exception) -> Error:
    if isinstance(exc, DomainError):
        return _domain_error(exc)
    if isinstance(exc, IntegrityError) and "email_index" in str(exc):
        return ("email", "conflict", "Another customer already has this email address.")
    return ("", "not_written", "The database refused this row.")


def _consent_refusals(rows: list[_Row]) -> None:
    """Refuse, before any write, rows whose answers the consent ledger would refuse
    (a grant after an objection): only existing customers can have one."""
    items, owners = [], []
    for row in rows:
        if row.errors or row.customer is None:
            continue
        for code, granted, at in row.answers:
            items.append((row.customer.pk, code, granted, at))
            owners.append(row)
    if not items:
        return
    for i, exc in consents_import_refusals(items=items).items():
        owners[i].errors.append(_domain_error(exc))


def _batch_write(
    batch: _Batch, rows: list[_Row], prepared: PreparedCustomers
) -> dict[str, int]:
    """The batch's writes and its audit event, in one transaction (rolled back in a
    dry run); returns its counts. Raises DatabaseError or DomainError (all undone)."""
    counts = {"imported": 0, "updated": 0, "skipped": 0}
    try:
        with transaction.atomic():
            existing = [r for r in rows if not r.errors and r.customer is not None]
            new = _new(rows)
            for row, made in zip(
                new, customers_insert_prepared(prepared=prepared), strict=True
            ):
                if isinstance(made, CustomerError):
                    row.errors.append(_domain_error(made))
                else:
                    row.customer_id = made
                    counts["imported"] += 1
            touched = [r for r in existing if r.changes or r.answers]
            if touched:
                customers_lock_bulk(customer_ids=[r.customer_id for r in touched])
            for row in sorted(existing, key=lambda r: str(r.customer_id)):
                if row.changes:
                    row.customer = customer_update(
                        actor=batch.actor,
                        customer=row.customer,  # type: ignore[arg-type]
                        data=row.changes,
                        audited=False,
                    )
            events = consents_import_bulk(
                items=[
                    (row.customer_id, code, granted, at)
                    for row in rows
                    if not row.errors
                    for code, granted, at in row.answers
                ],
                created={row.customer_id for row in new if not row.errors},
                actor=batch.actor,
            )
            consented = {event[0] for event in events}
            for row in existing:
                if row.changes or row.customer_id in consented:
                    counts["updated"] += 1
                else:
                    counts["skipped"] += 1
            if batch.dry_run:
                raise _DryRun
            audit.record(
                actor=batch.actor,
                action="customers.batch_imported",
                target_type="customers.customer",
                details={
                    **counts,
                    "refused": sum(1 for r in rows if r.errors),
                    "consents": len(events),
                    "first_line": rows[0].line,
                    **batch.audit_details,
                },
            )
    except _DryRun:
        pass
    return counts


class _Writer:
    """Writes prepared batches (`_batch_finish`) on one thread for all of them, with
    its own database connection, in the order they come, while the importing thread
    reads and looks up the next: the database's work on one batch overlaps Python's
    on the next. At most one batch waits here: memory stays flat. A lookup never
    misses a customer of a batch not yet committed: no email is on two batches (a
    repeat is refused, `duplicate_in_file`). `on_progress` and `on_error` are
    called from this thread, in order; an error met here is raised in the caller."""

    def __init__(
        self, batch: _Batch, on_progress: Callable[[ImportResult], None] | None
    ):
        self.batch = batch
        self.on_progress = on_progress
        self.queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=1)
        self.error: BaseException | None = None
        self.stopping = False
        self.thread = threading.Thread(
            target=self._run, name="customers-import-writer", daemon=True
        )
        self.thread.start()

    def _run(self) -> None:
        try:
            while (pending := self.queue.get()) is not None:
                try:
                    if self.error is None and not self.stopping:
                        # A connection broken by the batch before is replaced.
                        connection.close_if_unusable_or_obsolete()
                        _batch_finish(self.batch, pending)
                        if self.on_progress is not None:
                            self.on_progress(self.batch.result)
                except BaseException as exc:  # raised in the caller
                    self.error = exc
                finally:
                    self.queue.task_done()
        finally:
            connections.close_all()  # this thread's own

    def _check(self) -> None:
        if self.error is not None:
            raise self.error

    def put(self, pending: _Pending) -> None:
        self._check()
        self.queue.put(pending)

    def close(self) -> None:
        """Write what is queued and end the thread; raises its error if any."""
        self.queue.put(None)
        self.thread.join()
        self._check()

    def stop(self) -> None:
        """End the thread, writing nothing more (the caller is raising)."""
        if self.thread.is_alive():
            self.stopping = True
            self.queue.put(None)
            self.thread.join()


def customers_import(
    *,
    actor: User | None,
    file: IO[str] | IO[bytes],
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
    on_error: Callable[[RowError], None] | None = None,
    on_progress: Callable[[ImportResult], None] | None = None,
    audit_details: dict[str, Any] | None = None,
    workers: int | None = None,
) -> ImportResult:
    """Import customers (and their consents) from an open CSV file, read as a stream
    in batches of `batch_size` rows, each batch in a transaction of its own with one
    audit event; a bad row is refused alone and reported to `on_error` without its
    values; `on_progress` hears the counts after each batch. With `dry_run` every batch
    is rolled back and nothing is audited. `audit_details` (ids only) join each audit
    event. New customers are validated and sealed in `workers` processes (default
    `import_workers()`; 0: in this one) while the batch before is written. `file`
    in bytes is decoded as UTF-8 line by line, so a bad byte stops the import at its
    own line with every row before it imported. The header's names are trimmed and
    case-folded; its line tells the delimiter (a comma, or a semicolon or tab when
    it holds more of those). A second row with the same email is refused
    (`duplicate_in_file`): the first one is imported. Raises ImportHeaderError
    before any row is read, ImportWorkspaceError when the working file cannot be
    made, and ImportStopped (after auditing what was read) when the file cannot be
    read on or the working file written."""
    lines = _lines(file)
    try:
        first = next(lines, "")
    except _NotUTF8:
        raise ImportHeaderError(
            f"The header (line 1) is {NOT_UTF8}.", field="file"
        ) from None
    delimiter = _delimiter(first)
    header = next(csv.reader([first], delimiter=delimiter), [])
    fieldnames = [name.strip().casefold() for name in header]
    codes = customers_import_header_check(fieldnames)
    reader = csv.DictReader(lines, fieldnames=fieldnames, delimiter=delimiter)
    result = ImportResult()
    batch = _Batch(
        actor=actor,
        codes=codes,
        dry_run=dry_run,
        result=result,
        validator=_Validator(),
        on_error=on_error,
        audit_details=dict(audit_details or {}),
    )
    rows: list[_Row] = []
    # Batches in flight: each is looked up and handed to a worker process before the
    # one before it is written, so that validating and sealing one batch overlaps
    # writing the other. At most `workers + 1` at a time: memory stays flat.
    pending: collections.deque[_Pending] = collections.deque()
    pool: Any = None
    count = workers if workers is not None else import_workers()

    # Outside a transaction the batches are written on a thread of their own while
    # this one reads and looks up the next (`_Writer`); inside the caller's
    # transaction, which another connection could not see, here. The thread starts
    # with the first write, after the worker processes are forked (a fork copies
    # no thread, but the locks a running one holds).
    threaded = not connection.in_atomic_block
    writer: _Writer | None = None

    def finish_one() -> None:
        nonlocal writer
        done = pending.popleft()
        if threaded:
            if writer is None:
                writer = _Writer(batch, on_progress)
            writer.put(done)
            return
        _batch_finish(batch, done)
        if on_progress is not None:
            on_progress(result)

    def flush() -> None:
        nonlocal pool, count
        if not rows:
            return
        current = rows[:]
        rows.clear()
        seen.mark(current)
        if pool is None and count and (pending or batch.result.rows):
            if _forkable():
                # From the second batch on: a file of one batch forks nothing.
                pool = ProcessPoolExecutor(
                    count,
                    mp_context=multiprocessing.get_context("fork"),
                    initializer=_worker_init,
                    initargs=(os.getpid(),),
                )
            else:
                count = 0  # another thread runs here: no fork (_forkable)
        pending.append(_batch_prepare(batch, current, pool=pool))
        while len(pending) > count:
            finish_one()

    stopped = None
    failed = True
    seen = _EmailsSeen()
    try:
        try:
            for line, raw in _numbered(reader):
                if len(rows) >= batch_size:
                    flush()
                rows.append(_Row(line=line, raw=raw, key=_row_key(raw)))
        except _WorkspaceFailed as exc:
            stopped = _workspace_stop(exc, result)
        except _NotUTF8 as exc:
            stopped = ImportStopped(line=exc.line, reason=NOT_UTF8, result=result)
        except csv.Error as exc:
            stopped = ImportStopped(
                line=reader.line_num + 1, reason=str(exc), result=result
            )
        try:
            flush()
        except _WorkspaceFailed as exc:
            stopped = _workspace_stop(exc, result)
        while pending:
            finish_one()
        if writer is not None:
            writer.close()
        failed = False
    finally:
        seen.close()
        if writer is not None:
            writer.stop()  # after an error: what is still queued is dropped
        if pool is not None:
            # After an error, what is still queued is dropped and the workers
            # killed; a worker that died (killed, out of memory) made `result()`
            # raise BrokenProcessPool, one that hangs TimeoutError.
            _pool_stop(pool, failed=failed)
    if on_progress is not None and not result.rows:
        on_progress(result)
    details: dict[str, Any] = dataclasses.asdict(result)
    if stopped is not None:
        details["stopped_at_line"] = stopped.line
    details.update(batch.audit_details)
    if not dry_run:
        with transaction.atomic():
            audit.record(
                actor=actor,
                action="customers.imported",
                target_type="customers.customer",
                details=details,
            )
    logger.info("customers.imported", extra=details)
    if stopped is not None:
        raise stopped
    return result


def _workspace_stop(exc: _WorkspaceFailed, result: ImportResult) -> ImportStopped:
    """The import stopped where its working file failed (its batch is not
    imported; those before it are)."""
    return ImportStopped(
        line=exc.line,
        reason=f"its working file in {tempfile.gettempdir()}: {exc.why}",
        result=result,
        remedy="free space there (or set TMPDIR to a larger disk)",
        code="no_workspace",
    )


def _numbered(reader: csv.DictReader) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each row with its line in the file (the header, line 1, read before)."""
    for row in reader:
        yield reader.line_num + 1, row


def _lines(file: IO[str] | IO[bytes]) -> Iterator[str]:
    """The file's lines as text, without a byte order mark. Bytes are split into
    lines as a text file is (at LF, CR LF or a lone CR: Latin-1 reads any byte, and
    no byte of a UTF-8 sequence is a CR or LF), then each line is decoded as UTF-8:
    one that is not raises _NotUTF8 naming it, after every line before it was handed
    out."""
    binary = not isinstance(file, io.TextIOBase)
    source: Iterable[str] = (
        io.TextIOWrapper(cast(IO[bytes], file), encoding="latin-1", newline="")
        if binary
        else cast(IO[str], file)
    )
    for number, line in enumerate(source, start=1):
        text = line
        if binary:
            try:
                text = line.encode("latin-1").decode("utf-8")
            except UnicodeDecodeError:
                raise _NotUTF8(number) from None
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        yield text


def _delimiter(header: str) -> str:
    """A comma, or a semicolon or tab when the header line holds more of those
    (Excel's CSV in much of Europe uses semicolons)."""
    counts = {d: header.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > counts[","] else ","


# Uploads: a privacy admin's file, sealed at rest, imported by a worker -------------

CHUNK_BYTES = 1 << 20


class ImportUploadError(DomainError):
    code = "invalid"


def _chunk_aad(job_id: Any, seq: int) -> bytes:
    """A chunk opens only as its own job's `seq`-th: never swapped or replayed."""
    return f"amanah:v1:imports_importchunk.data:{job_id}:{seq}".encode()


def _pieces(chunks: Iterable[bytes], size: int) -> Iterator[bytes]:
    """The upload again, in pieces of `size` bytes (the last one shorter)."""
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    if pending:
        yield bytes(pending)


@transaction.atomic
def import_job_create(
    *, actor: User, chunks: Iterable[bytes], size: int, dry_run: bool = False
) -> ImportJob:
    """Store an uploaded CSV file (its `chunks`, `size` bytes) sealed under a data key
    of its own, in pieces of about 1 MB, and have a worker import it after the commit
    (`imports.run`). Audited. Raises ImportUploadError (empty, over
    AMANAH_IMPORT_MAX_BYTES)."""
    limit = settings.AMANAH_IMPORT_MAX_BYTES
    if size > limit:
        raise ImportUploadError(
            f"The file is larger than {limit // (1 << 20)} MB.", field="file"
        )
    if not size:
        raise ImportUploadError("The file is empty.", field="file")
    data_key = data_key_create()
    job = ImportJob.objects.create(
        created_by=actor,
        created_at=timezone.now(),
        data_key=data_key,
        dry_run=dry_run,
    )
    total = 0
    for seq, piece in enumerate(_pieces(chunks, CHUNK_BYTES)):
        total += len(piece)
        if total > limit:
            raise ImportUploadError(
                f"The file is larger than {limit // (1 << 20)} MB.", field="file"
            )
        ImportChunk.objects.create(
            job=job,
            seq=seq,
            data=seal_with(data_key, piece, _chunk_aad(job.pk, seq)),
        )
    job.total_bytes = total
    job.save(update_fields=["total_bytes"])
    audit.record(
        actor=actor,
        action="customers.import_uploaded",
        target=job,
        details={"bytes": total, "dry_run": dry_run},
    )
    # services -> tasks: the one accepted cycle (STYLE.md), imported here.
    from apps.imports.tasks import import_job_run_task

    job_id = str(job.pk)
    transaction.on_commit(lambda: import_job_run_task.delay(job_id))
    return job


class ImportUploadMissing(Exception):
    """A job's sealed upload cannot be read to its end (a part deleted, its key
    destroyed): the import fails rather than ending early as if the file did."""


class _ChunkReader(io.RawIOBase):
    """A job's upload as a byte stream, one sealed chunk opened at a time: a run holds
    about 1 MB of the file whatever its size. `position`: bytes handed out."""

    def __init__(self, job: ImportJob):
        super().__init__()
        self.job = job
        self.seq = 0
        self.buffer = b""
        self.offset = 0
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        if self.offset >= len(self.buffer):
            blob = (
                ImportChunk.objects.filter(job=self.job, seq=self.seq)
                .values_list("data", flat=True)
                .first()
            )
            if blob is None and self.position == self.job.total_bytes:
                return 0  # the end of the file
            if blob is None or self.job.data_key is None:
                raise ImportUploadMissing(
                    f"The upload is missing its part {self.seq} (after "
                    f"{self.position} of {self.job.total_bytes} bytes)."
                )
            plain = open_with(
                self.job.data_key, blob, _chunk_aad(self.job.pk, self.seq)
            )
            if plain is None:
                raise ImportUploadMissing(
                    f"The upload's part {self.seq} cannot be opened (its key is "
                    "destroyed)."
                )
            self.buffer, self.offset = plain, 0
            self.seq += 1
        count = min(len(target), len(self.buffer) - self.offset)
        target[:count] = self.buffer[self.offset : self.offset + count]
        self.offset += count
        self.position += count
        return count


def _job_counts(job: ImportJob, result: ImportResult) -> None:
    job.imported, job.updated = result.imported, result.updated
    job.skipped, job.refused = result.skipped, result.refused
    job.rows_done = result.rows


def import_job_run(*, job_id: Any) -> None:
    """Import a job's upload through `customers_import` (the command's own path), as a
    stream: its progress (rows done, bytes read) saved after each batch, its refused
    rows kept (line, field, code; never a value). The sealed upload is deleted and its
    key destroyed when the run ends, however it ends. A job another worker is running
    (its advisory lock held) or that has ended is left alone; one whose worker died is
    run again (the import is idempotent)."""
    with advisory_session_lock(f"imports.job:{job_id}") as got:
        if not got:
            logger.info("imports.job_busy", extra={"job": str(job_id)})
            return
        job = (
            ImportJob.objects.select_related("data_key", "created_by")
            .filter(pk=job_id)
            .first()
        )
        if job is None or not job.is_running:
            logger.info("imports.job_skipped", extra={"job": str(job_id)})
            return
        job.status, job.started_at = ImportStatus.RUNNING, timezone.now()
        job.save(update_fields=["status", "started_at"])
        ImportRowError.objects.filter(job=job).delete()  # a rerun reports afresh
        _job_import(job)


def _job_import(job: ImportJob) -> None:
    raw = _ChunkReader(job)
    errors: list[ImportRowError] = []

    def on_error(error: RowError) -> None:
        errors.append(
            ImportRowError(
                job=job,
                line=error.line,
                field=error.field[:100],
                code=error.code[:40],
                message=error.message[:300],
            )
        )

    def on_progress(result: ImportResult) -> None:
        ImportRowError.objects.bulk_create(errors)
        errors.clear()
        _job_counts(job, result)
        job.bytes_read = min(raw.position, job.total_bytes)
        job.save(
            update_fields=[
                "rows_done",
                "bytes_read",
                "imported",
                "updated",
                "skipped",
                "refused",
            ]
        )

    job.status = ImportStatus.FAILED
    try:
        result = customers_import(
            actor=job.created_by,
            file=io.BufferedReader(raw),
            dry_run=job.dry_run,
            batch_size=BATCH_SIZE,
            on_error=on_error,
            on_progress=on_progress,
            audit_details={"job": str(job.pk)},
        )
        _job_counts(job, result)
        job.status, job.bytes_read = ImportStatus.DONE, job.total_bytes
    except ImportHeaderError as exc:
        job.reason = f"{exc} Nothing was imported."[:300]
    except ImportWorkspaceError as exc:
        # The server's setting, not the file: said to its operators too.
        logger.error("imports.no_workspace", extra={"job": str(job.pk)})
        job.reason = f"{exc} Nothing was imported."[:300]
    except ImportStopped as stop:
        if stop.code == "no_workspace":
            logger.error("imports.no_workspace", extra={"job": str(job.pk)})
        _job_counts(job, stop.result)
        job.reason = str(stop)[:300]
    except ImportUploadMissing as exc:
        logger.error("imports.upload_missing", extra={"job": str(job.pk)})
        job.reason = (f"{exc} The rows before were kept; upload the file again.")[:300]
    except Exception as exc:
        # The type only: a database's message may quote a value.
        logger.error(
            "imports.job_failed",
            extra={"job": str(job.pk), "error": type(exc).__name__},
        )
        job.reason = "The import failed on the server; the rows before were kept."
    finally:
        ImportRowError.objects.bulk_create(errors)
        job.finished_at = timezone.now()
        _job_close(job)


@transaction.atomic
def _job_close(job: ImportJob) -> None:
    """Save how the run ended, delete its sealed upload and destroy its key."""
    ImportChunk.objects.filter(job=job).delete()
    if job.data_key is not None:
        data_key_destroy(data_key=job.data_key)
    job.save()
    if job.status == ImportStatus.FAILED:
        audit.record(
            actor=job.created_by,
            action="customers.import_failed",
            target=job,
            details={"rows": job.rows_done},
        )


def import_jobs_cleanup(*, now: datetime | None = None) -> int:
    """Fail the jobs no worker finished within AMANAH_IMPORT_ABANDON_HOURS and delete
    their sealed uploads (and any left by a run that died after its summary).
    Returns how many jobs were failed."""
    cutoff = (now or timezone.now()) - timedelta(
        hours=settings.AMANAH_IMPORT_ABANDON_HOURS
    )
    failed = 0
    stale = ImportJob.objects.select_related("data_key", "created_by").filter(
        status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING], created_at__lt=cutoff
    )
    for job in stale:
        with advisory_session_lock(f"imports.job:{job.pk}") as got:
            if not got:
                continue  # a worker is on it
            job.status = ImportStatus.FAILED
            job.reason = "Abandoned: no worker finished it in time. Upload it again."
            job.finished_at = timezone.now()
            _job_close(job)
            failed += 1
    ImportChunk.objects.filter(
        job__status__in=[ImportStatus.DONE, ImportStatus.FAILED]
    ).delete()
    logger.info("imports.cleanup", extra={"failed": failed})
    return failed
