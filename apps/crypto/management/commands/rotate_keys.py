import signal

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.crypto.errors import CryptoError
from apps.crypto.services import data_keys_rotate, master_keys_retired_in_ring


def _stop_on_sigterm(signum, frame):
    # A process manager's stop: end as Ctrl-C does, so the run is audited as
    # interrupted before the process goes.
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = (
        "Rewrap every data key under the newest master key in the key ring, putting "
        "that version in use first if it is not yet. Resumable: run it again after an "
        "interruption; audited as started, interrupted, resumed and completed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=5000)

    def handle(self, *args, batch_size: int, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        bar = tqdm(unit="key", disable=options["verbosity"] == 0)

        def started(version: int, pending: int) -> None:
            bar.reset(total=pending)
            bar.set_description(f"Rewrapping under v{version}")

        previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
        try:
            result = data_keys_rotate(
                actor=None,
                batch_size=batch_size,
                on_start=started,
                on_progress=bar.update,
            )
        except CryptoError as exc:
            raise CommandError(str(exc)) from exc
        except KeyboardInterrupt:
            raise CommandError(
                "Rotation interrupted (audited); run rotate_keys again to finish it."
            ) from None
        finally:
            signal.signal(signal.SIGTERM, previous)
            bar.close()
        resumed = " (resumed)" if result.resumed else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"Rewrapped {result.rewrapped} data keys under master key "
                f"v{result.to_version}{resumed}; {result.remaining} left."
            )
        )
        if result.remaining:
            raise CommandError(
                f"{result.remaining} data keys were busy; run rotate_keys again."
            )
        self.stdout.write(
            "Older master keys retire once the backup retention has passed: "
            "run retire_keys (beat runs it daily)."
        )
        for version in master_keys_retired_in_ring():
            self.stderr.write(
                f"Master key v{version} is retired: remove it from AMANAH_MASTER_KEYS."
            )
