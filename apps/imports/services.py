"""Import of existing customers from a CSV file: each row through the API's own
validation (`CustomerInputSerializer`, then the customer services), idempotent by the
email's blind index, streamed, each row committed on its own.

Lock order: as the customer and consent services take them (the customer, its data
key, then the audit chain), one row at a time.
"""

import csv
import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from typing import IO, Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.access.api import CustomerInputSerializer
from apps.accounts.models import User
from apps.audit import services as audit
from apps.consent.selectors import purpose_list_active
from apps.consent.services import consent_import
from apps.core.errors import DomainError
from apps.customers.selectors import customer_find_by_email
from apps.customers.services import customer_changes, customer_create, customer_update

logger = logging.getLogger(__name__)

CONSENT = "consent:"
CONSENT_AT = "consent_at:"
ANSWERS = {"granted": True, "withdrawn": False}


class ImportHeaderError(DomainError):
    code = "bad_header"


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


class _Refused(Exception):
    def __init__(self, errors: list[tuple[str, str, str]]):
        super().__init__("row refused")
        self.errors = errors


class _DryRun(Exception):
    def __init__(self, outcome: str):
        super().__init__("dry run")
        self.outcome = outcome


class ImportStopped(Exception):
    """The file could not be read on from `line` (not UTF-8, a malformed CSV record):
    the rows before it were imported and audited (`result`)."""

    def __init__(self, *, line: int, reason: str, result: "ImportResult"):
        super().__init__(reason)
        self.line = line
        self.reason = reason
        self.result = result


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
    row: dict[str, Any], codes: list[str]
) -> list[tuple[str, bool, datetime]]:
    answers: list[tuple[str, bool, datetime]] = []
    errors: list[tuple[str, str, str]] = []
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
        try:
            at = parse_datetime(when) if when else None
        except ValueError:
            at = None
        if at is None:
            errors.append(
                (CONSENT_AT + code, "invalid", "Give an ISO 8601 date and time.")
            )
            continue
        if timezone.is_naive(at):
            at = at.replace(tzinfo=UTC)
        if at > timezone.now():
            errors.append((CONSENT_AT + code, "future", "This time is in the future."))
            continue
        answers.append((code, ANSWERS[answer], at))
    if errors:
        raise _Refused(errors)
    return answers


def _serializer_errors(errors: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = []
    for field, details in errors.items():
        for detail in details if isinstance(details, list) else [details]:
            found.append((field, getattr(detail, "code", "invalid"), str(detail)))
    return found


def _import_row(*, actor: User | None, row: dict[str, Any], codes: list[str]) -> str:
    """One row, in the caller's savepoint: 'imported', 'updated' or 'skipped'. Raises
    _Refused."""
    fields = {k: v for k, v in row.items() if k in CustomerInputSerializer().fields}
    if None in row:  # csv.DictReader's key for cells past the header's
        raise _Refused(
            [("", "extra_fields", "The row has more fields than the header.")]
        )
    fields = {k: ("" if v is None else v) for k, v in fields.items()}
    if not (fields.get("email") or "").strip():
        raise _Refused([("email", "required", "This field is required.")])
    customer = customer_find_by_email(email=fields["email"])
    if customer is not None:
        # A blank (or missing) cell says nothing: it never clears what is stored.
        fields = {k: v for k, v in fields.items() if v.strip()}
    elif fields.get("date_of_birth") == "":
        fields["date_of_birth"] = None
    serializer = CustomerInputSerializer(data=fields, partial=customer is not None)
    errors = [] if serializer.is_valid() else _serializer_errors(serializer.errors)
    try:
        answers = _consents(row, codes)
    except _Refused as refused:
        errors += refused.errors
    if errors:
        raise _Refused(errors)
    data = dict(serializer.validated_data)
    try:
        if customer is None:
            customer = customer_create(actor=actor, data=data)
            outcome = "imported"
        else:
            changes = customer_changes(customer=customer, data=data)
            if changes:
                customer = customer_update(actor=actor, customer=customer, data=changes)
            outcome = "updated" if changes else "skipped"
        consented = False
        for code, granted, at in answers:
            event = consent_import(
                actor=actor,
                customer=customer,
                purpose_code=code,
                granted=granted,
                at=at,
            )
            consented = consented or event is not None
    except DomainError as exc:
        raise _Refused([(exc.field or "", exc.code, str(exc))]) from None
    return "updated" if outcome == "skipped" and consented else outcome


def _no_values(
    errors: list[tuple[str, str, str]], row: dict[str, Any]
) -> list[tuple[str, str, str]]:
    """Errors as written to the errors file: a message that holds any of the row's
    values (a framework message may quote it) is replaced by its code."""
    values = [v.strip() for v in row.values() if isinstance(v, str) and v.strip()]
    return [
        (field, code, code if any(v in message for v in values) else message)
        for field, code, message in errors
    ]


def customers_import(
    *,
    actor: User | None,
    file: IO[str],
    dry_run: bool = False,
    progress_every: int = 500,
    on_error: Callable[[RowError], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ImportResult:
    """Import customers (and their consents) from an open CSV file, read row by row,
    each row in a transaction of its own; a bad row is refused alone and reported to
    `on_error` without its values; `on_progress` hears the count every
    `progress_every` rows and at the end. With `dry_run` every row is rolled back and
    nothing is audited. Raises ImportHeaderError before any row is read, and
    ImportStopped (after auditing what was read) when the file cannot be read on."""
    reader = csv.DictReader(file)
    codes = customers_import_header_check(reader.fieldnames)
    result = ImportResult()
    stopped = None
    try:
        for line, row in _numbered(reader):
            _import_counted(
                actor=actor,
                line=line,
                row=row,
                codes=codes,
                dry_run=dry_run,
                result=result,
                on_error=on_error,
            )
            if on_progress is not None and result.rows % progress_every == 0:
                on_progress(result.rows)
    except (UnicodeDecodeError, csv.Error) as exc:
        reason = "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc)
        stopped = ImportStopped(line=reader.line_num, reason=reason, result=result)
    if on_progress is not None:
        on_progress(result.rows)
    details: dict[str, Any] = dataclasses.asdict(result)
    if stopped is not None:
        details["stopped_at_line"] = stopped.line
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


def _numbered(reader: csv.DictReader) -> Iterator[tuple[int, dict[str, Any]]]:
    for row in reader:
        yield reader.line_num, row


def _import_counted(
    *,
    actor: User | None,
    line: int,
    row: dict[str, Any],
    codes: list[str],
    dry_run: bool,
    result: ImportResult,
    on_error: Callable[[RowError], None] | None,
) -> None:
    """One row in a transaction of its own, counted: the audit chain's lock is held
    to each row's commit, never across rows, so no customer row is locked after it
    (apps/core/db.py) and other writers wait one row at most. Rolled back in a dry
    run."""
    try:
        with transaction.atomic():
            outcome = _import_row(actor=actor, row=row, codes=codes)
            if dry_run:
                raise _DryRun(outcome)
    except _DryRun as dry:
        outcome = dry.outcome
    except _Refused as refused:
        result.refused += 1
        if on_error is not None:
            for error in _no_values(refused.errors, row):
                on_error(RowError(line, *error))
        return
    setattr(result, outcome, getattr(result, outcome) + 1)
