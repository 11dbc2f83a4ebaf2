from django.core.management.base import BaseCommand, CommandError

from apps.crypto.errors import CryptoError
from apps.crypto.services import master_key_create


class Command(BaseCommand):
    help = (
        "Make the next master key version: in the HSM with AMANAH_KEY_PROVIDER=pkcs11 "
        "(it never leaves it); with env, printed for you to add to AMANAH_MASTER_KEYS. "
        "It is put in use by the next rotate_keys (or beat's epoch rotation)."
    )

    def handle(self, *args, **options):
        try:
            version, secret = master_key_create(actor=None)
        except CryptoError as exc:
            raise CommandError(str(exc)) from exc
        if secret is None:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Made master key v{version} in the HSM. "
                    "Run rotate_keys to put it in use."
                )
            )
            return
        self.stdout.write(secret)
        self.stderr.write(
            f"Master key v{version}: add the line above in front of "
            "AMANAH_MASTER_KEYS (comma-separated) for every process (web, workers, "
            "beat), restart them, then run rotate_keys. Keep it as you keep the others."
        )
