import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from kombu.exceptions import OperationalError as BrokerError
from tqdm import tqdm

from apps.core.errors import DomainError
from apps.core.workers import broker_shown, task_queue, workers_consuming
from apps.retention.models import DisposalProgress, RunStatus
from apps.retention.selectors import (
    DisposalTally,
    disposable,
    disposal_run_tally,
    policies_in_run_order,
)
from apps.retention.services import purge_dry_run, purge_fans_out, purge_start


class Command(BaseCommand):
    help = (
        "Dispose of everything the enabled retention policies say is due, in batches. "
        "Resumes an unfinished run. With a broker configured, workers take the batches "
        "(--here: this process does)."
    )
    # How long workers have to answer, and how long a run may make no progress
    # before the command looks for them again.
    answer_seconds = 2.0
    stall_seconds = 60.0

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Change nothing.")
        parser.add_argument(
            "--batch-size", type=int, default=settings.AMANAH_DISPOSAL_BATCH_SIZE
        )
        parser.add_argument(
            "--here",
            action="store_true",
            help="Run the batches in this process even when a broker is configured.",
        )

    def handle(self, *args, dry_run: bool, batch_size: int, here: bool, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if dry_run:
            forecast = purge_dry_run()
            self._table(forecast)
            if forecast.overlapping:
                shared = ", ".join(
                    f"{line.policy.code} {line.earlier}"
                    for line in forecast.policies
                    if line.earlier
                )
                self.stdout.write(
                    f"{forecast.overlapping} customers are due under more than one "
                    "policy for the same data; each is disposed of once, under the "
                    f"first in the order above (not counted again under: {shared})."
                )
            self.stdout.write("Dry run: nothing was changed.")
            return
        fan_out = purge_fans_out(here=here)
        if fan_out:
            self._require_worker()
        total = sum(disposable(p).count() for p in policies_in_run_order())
        quiet = options["verbosity"] == 0
        with tqdm(total=total, unit="row", desc="Disposing", disable=quiet) as bar:
            try:
                run = purge_start(
                    actor=None,
                    batch_size=batch_size,
                    here=here,
                    on_batch=lambda code, n: bar.update(n),
                )
                if fan_out:
                    run = self._wait(run, bar)
            except DomainError as exc:
                raise CommandError(str(exc)) from exc
            # Rows that fell due (or were freed) while the run went on count too.
            bar.total = max(bar.n, total)
            bar.refresh()
        tally = disposal_run_tally(run)
        self._table(tally)
        self.stdout.write(
            f"Run {run.pk}: {run.get_status_display().lower()}, {tally.rows} rows "
            f"disposed ({tally.customers} customers)."
        )
        if run.status == RunStatus.FAILED:
            raise CommandError(
                f"Run {run.pk} failed ({run.error}); run purge_expired again to resume "
                "it."
            )

    def _workers(self) -> list[str]:
        from apps.retention.tasks import purge_batch_task

        try:
            return workers_consuming(
                task_queue(purge_batch_task), timeout=self.answer_seconds
            )
        except BrokerError as exc:
            raise CommandError(
                f"Cannot reach the broker at {broker_shown()} ({exc}); check "
                "CELERY_BROKER_URL, or run the disposal here with --here."
            ) from exc

    def _require_worker(self) -> None:
        if not self._workers():
            raise CommandError(
                f"No Celery worker answered on {broker_shown()}; start one with "
                "`make worker`, or run the disposal in this process with --here."
            )

    def _wait(self, run, bar):
        """Follow a run the workers do until it ends, saying so when it stalls."""
        seen, moved = 0, time.monotonic()
        while True:
            run.refresh_from_db()
            done = sum(
                DisposalProgress.objects.filter(run=run).values_list(
                    "disposed", flat=True
                )
            )
            if done != seen:
                bar.update(done - seen)
                seen, moved = done, time.monotonic()
            if run.status != RunStatus.RUNNING:
                return run
            if time.monotonic() - moved > self.stall_seconds:
                moved = time.monotonic()  # look again after as long
                if not self._workers():
                    bar.clear()
                    self.stderr.write(
                        f"Run {run.pk} has made no progress for "
                        f"{self.stall_seconds:.0f} s and no Celery worker answers on "
                        f"{broker_shown()}: its batches wait in the queue. Start one "
                        "with `make worker`; the run goes on when it does (Ctrl-C "
                        "leaves it queued, and the next purge_expired resumes it)."
                    )
                    bar.refresh()
            time.sleep(0.5)

    def _table(self, tally: DisposalTally) -> None:
        """Per policy in run order: rows and their customers; the dry run and the
        run print the same columns."""
        self.stdout.write(
            f"{'policy':<22} {'covers':<20} {'action':<13} {'rows':>10} "
            f"{'customers':>10}"
        )
        for line in tally.policies:
            policy = line.policy
            self.stdout.write(
                f"{policy.code:<22} {policy.covers:<20} {policy.action:<13} "
                f"{line.rows:>10} {line.customers:>10}"
            )
        self.stdout.write(
            f"{'all policies':<57} {tally.rows:>10} {tally.customers:>10} distinct"
        )
