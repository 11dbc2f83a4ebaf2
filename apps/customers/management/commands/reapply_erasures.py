from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.customers.journal import erasure_journal_line_count
from apps.customers.services import erasures_reapply


class Command(BaseCommand):
    help = (
        "After restoring the database from a backup, erase again every customer the "
        "erasure journal names whom the restored database still holds. Run it before "
        "the web and worker processes start. Idempotent: run it again after an "
        "interruption."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--journal",
            required=True,
            help="the erasure journal (AMANAH_ERASURE_JOURNAL of the system whose "
            "backup was restored)",
        )
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args, journal: str, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        path = Path(journal)
        try:
            total = erasure_journal_line_count(path)
            with tqdm(
                total=total,
                unit="line",
                desc="Reapplying erasures",
                disable=options["verbosity"] == 0 or total == 0,
            ) as bar:
                result = erasures_reapply(
                    path=path, batch_size=batch_size, on_progress=bar.update
                )
        except FileNotFoundError:
            raise CommandError(f"No erasure journal at {path}.") from None
        except OSError as exc:
            raise CommandError(
                f"Cannot read the erasure journal at {path}: {exc.strerror or exc}."
            ) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Reapplied {_count(result.reapplied, 'erasure')}; "
                f"{_count(result.already_applied, 'line')} already applied; "
                f"{_count(result.not_found, 'line')} naming customers not in this "
                f"database; {_count(result.unreadable, 'unreadable line')}."
            )
        )
        if result.unreadable:
            shown = ", ".join(str(n) for n in result.unreadable_lines)
            more = ", ..." if result.unreadable > len(result.unreadable_lines) else ""
            raise CommandError(
                f"{_count(result.unreadable, 'line')} of {path} could not be read "
                f"({'line' if result.unreadable == 1 else 'lines'} {shown}{more}); "
                "every other line was applied."
            )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
