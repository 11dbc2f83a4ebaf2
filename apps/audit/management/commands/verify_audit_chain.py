from pathlib import Path

from django.core.management.base import CommandError

from apps.audit.errors import AuditError
from apps.audit.models import ChainVerification
from apps.audit.selectors import audit_chain_verify, audit_checkpoint_load
from apps.audit.services import chain_verification_record
from apps.core.commands import PlainErrorCommand


class Command(PlainErrorCommand):
    """Exit 0 when intact; 1 with one plain line on stderr (`Audit chain broken: ...`,
    `The checkpoint is not signed: ...`), not Django's `CommandError: ...`."""

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
        parser.add_argument(
            "--keys",
            type=Path,
            help="Check the checkpoint's signature against this JWKS file (a saved "
            "copy of /.well-known/amanah-signing-keys.json) instead of this "
            "installation's keys; needs no signing key.",
        )

    def handle(self, *args, checkpoint: Path | None, keys: Path | None, **options):
        if keys and not checkpoint:
            raise CommandError("--keys checks a checkpoint: give --checkpoint too.")
        try:
            saved = audit_checkpoint_load(checkpoint, keys=keys) if checkpoint else None
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
        if saved is None:
            self.stdout.write(self.style.SUCCESS(report.summary))
            return
        key = f"key {saved['kid']} from {keys}" if keys else f"key {saved['kid']}"
        summary = report.summary[0].lower() + report.summary[1:]
        self.stdout.write(
            self.style.SUCCESS(f"Checkpoint signature valid ({key}); {summary}")
        )
