from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.audit.services import audit_checkpoint_write
from apps.core.errors import DomainError


class Command(BaseCommand):
    help = (
        "Write a signed checkpoint of the audit chain's head (sequence number, row "
        "count, hash) to AMANAH_AUDIT_CHECKPOINT_DIR, or to --output; prints its path."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--output", type=Path, help="Write the checkpoint to this file instead."
        )

    def handle(self, *args, output: Path | None, **options):
        try:
            row = audit_checkpoint_write(output=output)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(row.path)
        self.stderr.write(
            f"Checkpoint of event #{row.seq} ({row.count} events) written and signed "
            f"(key {row.kid})."
        )
