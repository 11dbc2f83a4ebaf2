import json
from pathlib import Path

from django.core.management.base import CommandError

from apps.consent.forms import RECEIPT_MAX_BYTES
from apps.consent.receipts import receipts_verify
from apps.core.commands import PlainErrorCommand
from apps.crypto.errors import CryptoError
from apps.crypto.signing import public_keys_from_jwks


def _read_json(path: Path, *, what: str) -> object:
    try:
        with path.open("rb") as fh:
            raw = fh.read(RECEIPT_MAX_BYTES + 1)
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror}") from exc
    if len(raw) > RECEIPT_MAX_BYTES:
        raise CommandError(
            f"{path} is over {RECEIPT_MAX_BYTES // 1024} KB: not {what}."
        )
    try:
        return json.loads(raw)
    except RecursionError:
        raise CommandError(f"{path} is not {what} (it is nested too deep).") from None
    except ValueError:
        raise CommandError(f"{path} is not {what} (it is not JSON).") from None


class Command(PlainErrorCommand):
    """Exit 0 and say what each receipt attests; 1 with one plain line on stderr
    (`Not valid: ...`), not Django's `CommandError: ...`."""

    help = (
        "Check a signed consent receipt, or a downloaded file of them: exit 0 and "
        "say what each attests when valid, 1 with the reason when not."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path, help="A receipt or a receipts file.")
        parser.add_argument(
            "--keys",
            type=Path,
            help="Check against this JWKS file (a copy of "
            "/.well-known/amanah-signing-keys.json) instead of this installation's "
            "keys.",
        )

    def handle(self, *args, file: Path, keys: Path | None, **options):
        data = _read_json(file, what="a consent receipt")
        try:
            public = (
                public_keys_from_jwks(_read_json(keys, what="a JWKS")) if keys else None
            )
            verified = receipts_verify(data, keys=public)
        except CryptoError as exc:
            raise CommandError(f"Not valid: {exc.message}") from exc
        noun = "receipt" if len(verified) == 1 else f"{len(verified)} receipts"
        self.stdout.write(self.style.SUCCESS(f"Valid: {noun}, signature verified."))
        for receipt in verified:
            self.stdout.write(receipt.attests)
