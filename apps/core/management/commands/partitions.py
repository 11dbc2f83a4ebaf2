"""The partitioned logs' monthly partitions: `partitions list [--counts]`, and
`partitions ensure` (what the daily beat job does)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection

from apps.core.partitions import (
    partitioned_tables,
    partitions_disposed,
    partitions_ensure,
    partitions_list,
    table_is_partitioned,
)


class Command(BaseCommand):
    help = "List the partitioned logs' monthly partitions, or create those ahead."

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        listing = actions.add_parser("list", help="Each log's partitions.")
        listing.add_argument(
            "--counts",
            action="store_true",
            help="Count each partition's rows exactly (one count(*) each).",
        )
        actions.add_parser("ensure", help="Create the months ahead that are missing.")

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            self.stdout.write("No partitions: on SQLite the logs are plain tables.")
            return
        if options["action"] == "ensure":
            created = partitions_ensure()
            for name in created:
                self.stdout.write(f"created {name}")
            self.stdout.write(f"{len(created)} partitions created.")
            return
        for entry in partitioned_tables():
            if not table_is_partitioned(entry.table):
                self.stdout.write(f"{entry.table}: a plain table (not migrated yet)")
                continue
            parts = partitions_list(entry.table, counts=options["counts"])
            self.stdout.write(
                f"{entry.table} by {entry.column}, {entry.months_ahead} months ahead: "
                f"{len(parts)} partitions"
            )
            for part in parts:
                span = (
                    "DEFAULT (other months)"
                    if part.start is None or part.end is None
                    else f"{part.start:%Y-%m-%d} to {part.end:%Y-%m-%d}"
                )
                rows = f"{part.rows:>12,} rows" if part.rows is not None else ""
                self.stdout.write(f"  {part.name:<44} {span:<26} {rows}".rstrip())
            for name in partitions_disposed(entry.table):
                self.stdout.write(f"  {name:<44} detached, to drop")
