import csv
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import IO

from django.core.management.base import CommandError

from apps.core.commands import PlainErrorCommand
from apps.imports.services import (
    BATCH_SIZE,
    ImportHeaderError,
    ImportResult,
    ImportStopped,
    ImportWorkspaceError,
    RowError,
    customers_import,
)

PROGRESS_EVERY = 1000


class Command(PlainErrorCommand):
    help = (
        "Import existing customers from a CSV file whose columns are named as the "
        "customer API's fields, plus consent:<purpose> (granted|withdrawn) and "
        "consent_at:<purpose> (ISO 8601). Idempotent: a rerun updates or skips each "
        "customer found by email. Refused rows go to --errors, without their values."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="the CSV file (UTF-8, a header row)")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="validate and count, write nothing",
        )
        parser.add_argument(
            "--errors",
            help="write the refused rows' line numbers, fields and error codes here",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=BATCH_SIZE,
            help="rows per batch: each batch is validated, then written in one "
            "transaction with one audit event",
        )

    def handle(self, *args, file: str, dry_run: bool, errors: str | None, **options):
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        path = Path(file)
        stderr = sys.stderr
        tty = stderr.isatty()
        quiet = options["verbosity"] == 0

        def progress(result: ImportResult) -> None:
            rows = result.rows
            if quiet or not rows or (rows % PROGRESS_EVERY and not tty):
                return
            stderr.write(f"\rread {rows} rows" if tty else f"read {rows} rows\n")
            stderr.flush()

        try:
            sink = _errors_file(errors)
        except OSError as exc:
            raise CommandError(
                f"Cannot write the errors file {errors}: {exc.strerror}."
            ) from None
        try:
            with path.open("rb") as source, sink as out:
                writer = csv.writer(out) if out else None
                if writer:
                    writer.writerow(["line", "field", "code", "message"])

                def on_error(error: RowError) -> None:
                    if writer:
                        writer.writerow(
                            [error.line, error.field, error.code, error.message]
                        )

                result = customers_import(
                    actor=None,
                    file=source,
                    dry_run=dry_run,
                    batch_size=options["batch_size"],
                    on_error=on_error,
                    on_progress=progress,
                )
        except ImportHeaderError as exc:
            raise CommandError(f"{path}: {exc} Nothing was imported.") from None
        except ImportStopped as stop:
            raise CommandError(f"{path}: {stop}") from None
        except ImportWorkspaceError as exc:
            raise CommandError(f"{exc} Nothing was imported.") from None
        except FileNotFoundError:
            raise CommandError(f"No file at {path}.") from None
        except (OSError, csv.Error) as exc:
            raise CommandError(f"Cannot read {path}: {exc}.") from None
        if tty and not quiet:
            stderr.write("\n")
        if dry_run:
            self.stdout.write("Dry run: nothing was written.")
        self.stdout.write(result.summary())


def _errors_file(path: str | None) -> AbstractContextManager[IO[str] | None]:
    """The errors file, opened now (so that a path it cannot write is said first), or
    nothing."""
    if path is None:
        return nullcontext()
    return open(path, "w", newline="", encoding="utf-8")
