import csv
import io
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.core.replica import replica_reads
from apps.retention.errors import RetentionError
from apps.retention.selectors import retention_report, retention_report_differences
from apps.retention.services import retention_counts_rebuild

CSV_COLUMNS = (
    "code",
    "covers",
    "action",
    "period_days",
    "held",
    "due_30",
    "due_60",
    "due_90",
    "overdue",
    "on_hold",
    "disposed_total",
)


def report_csv(report: dict) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(report["policies"])
    return buffer.getvalue()


class Command(BaseCommand):
    help = (
        "The retention report: per policy, what is held, due, overdue, held back, gone."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["json", "csv"], default="json")
        parser.add_argument("--output", type=Path, help="Write to this file.")
        parser.add_argument(
            "--verify",
            action="store_true",
            help="Recount every policy from the rows and say where the report "
            "differs (exit 1 if it does).",
        )
        parser.add_argument(
            "--rebuild",
            action="store_true",
            help="Recount the report's clock histograms from the rows (after a bulk "
            "load with triggers off).",
        )

    def handle(
        self,
        *args,
        format: str,
        output: Path | None,
        verify: bool = False,
        rebuild: bool = False,
        **options,
    ):
        if rebuild:
            try:
                changed = retention_counts_rebuild()
            except RetentionError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"Clock counts rebuilt: {changed} days corrected.")
        if verify:
            self._verify()
        if rebuild or verify:
            return
        with replica_reads():
            report = retention_report()
        body = (
            json.dumps(report, indent=2) + "\n"
            if format == "json"
            else report_csv(report)
        )
        if output is None:
            self.stdout.write(body, ending="")
            return
        try:
            output.write_text(body)
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror}") from exc
        self.stderr.write(f"Report written to {output}.")

    def _verify(self) -> None:
        differences = retention_report_differences()
        for line in differences:
            self.stderr.write(line)
        if differences:
            raise CommandError(
                f"The report differs from a recount in {len(differences)} places; "
                "retention_report --rebuild recounts its histograms."
            )
        self.stdout.write("The report equals a recount from the rows.")
