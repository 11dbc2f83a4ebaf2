from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.audit.errors import AuditError
from apps.audit.models import ChainVerification
from apps.audit.selectors import audit_chain_verify, audit_checkpoint_load
from apps.audit.services import chain_verification_record


class Command(BaseCommand):
    help = (
        "Verify the audit hash chain: exit 0 when intact, 1 naming the first bad row."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--checkpoint",
            type=Path,
            help="A signed checkpoint file: its signature is checked first, then the "
            "chain must still reach it.",
        )

    def handle(self, *args, checkpoint: Path | None, **options):
        try:
            saved = audit_checkpoint_load(checkpoint) if checkpoint else None
        except AuditError as exc:
            raise CommandError(str(exc)) from exc
        report = audit_chain_verify(checkpoint=saved)
        chain_verification_record(
            report=report,
            source=ChainVerification.Source.COMMAND,
            checkpoint=str(checkpoint or ""),
        )
        if not report.ok:
            raise CommandError(report.summary)
        self.stdout.write(self.style.SUCCESS(report.summary))
