import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.audit.selectors import audit_checkpoint_get


class Command(BaseCommand):
    help = "Print the audit chain's head (row count and hash) as JSON, or save it."

    def add_arguments(self, parser):
        parser.add_argument(
            "--output", type=Path, help="Write the checkpoint to this file."
        )

    def handle(self, *args, output: Path | None, **options):
        body = json.dumps(audit_checkpoint_get(), indent=2) + "\n"
        if output is None:
            self.stdout.write(body, ending="")
            return
        try:
            output.write_text(body)
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc.strerror}") from exc
        self.stderr.write(f"Checkpoint written to {output}.")
