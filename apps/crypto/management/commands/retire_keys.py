from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.crypto.errors import CryptoError
from apps.crypto.services import master_keys_retire, master_keys_retired_in_ring


class Command(BaseCommand):
    help = (
        "Retire every master key version whose epoch ended before the oldest backup "
        "still kept (AMANAH_BACKUP_RETENTION_DAYS): destroyed in the HSM with pkcs11; "
        "with env, named for you to remove from AMANAH_MASTER_KEYS. Refuses a version "
        "that still wraps a data key. Beat runs it daily after the epoch rotation."
    )

    def handle(self, *args, **options):
        try:
            outcomes = master_keys_retire(actor=None)
            in_ring = master_keys_retired_in_ring()
        except CryptoError as exc:
            raise CommandError(str(exc)) from exc
        refused = []
        for item in outcomes:
            if item.outcome == "destroyed":
                self.stdout.write(f"Master key v{item.version}: destroyed in the HSM.")
            elif item.outcome == "remove_from_configuration":
                self.stdout.write(
                    f"Master key v{item.version}: retired; remove it from "
                    "AMANAH_MASTER_KEYS (and every copy of that secret), then "
                    "restart the processes."
                )
            elif item.outcome == "not_yet":
                due = timezone.localtime(item.due).date() if item.due else "later"
                self.stdout.write(
                    f"Master key v{item.version}: a kept backup may still hold keys "
                    f"under it; it can be retired on {due}."
                )
            else:
                refused.append(item)
        for version in in_ring:
            self.stderr.write(
                f"Master key v{version} is retired but still in AMANAH_MASTER_KEYS: "
                "remove it."
            )
        if refused:
            raise CommandError(
                "; ".join(
                    f"Master key v{r.version} cannot be retired: {r.keys_left} data "
                    "keys are still wrapped under it (run rotate_keys)"
                    for r in refused
                )
                + "."
            )
        if not outcomes:
            self.stdout.write("No master key is due for retirement.")
