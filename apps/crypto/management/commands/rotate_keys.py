from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.crypto.errors import CryptoError
from apps.crypto.keyring import key_ring
from apps.crypto.services import data_keys_pending_rotation, data_keys_rotate


class Command(BaseCommand):
    help = (
        "Rewrap every data key under the active master key (the highest version in "
        "AMANAH_MASTER_KEYS). Resumable: run it again after an interruption."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        try:
            version = key_ring().active_version
            pending = data_keys_pending_rotation()
            with tqdm(
                total=pending,
                unit="key",
                desc=f"Rewrapping under v{version}",
                disable=options["verbosity"] == 0 or pending == 0,
            ) as bar:
                result = data_keys_rotate(
                    actor=None, batch_size=batch_size, on_progress=bar.update
                )
        except CryptoError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"Rewrapped {result.rewrapped} data keys under master key "
                f"v{result.to_version}; {result.remaining} left."
            )
        )
        if result.remaining == 0:
            self.stdout.write(
                "Older master keys can now be removed from AMANAH_MASTER_KEYS."
            )
