import csv
import io
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.retention.selectors import retention_report

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

    def handle(self, *args, format: str, output: Path | None, **options):
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
