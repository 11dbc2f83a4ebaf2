import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.core.errors import DomainError
from apps.retention.models import DisposalProgress, RunStatus
from apps.retention.selectors import disposable, policy_list
from apps.retention.services import purge_dry_run, purge_fan_out, purge_run


class Command(BaseCommand):
    help = (
        "Dispose of everything the enabled retention policies say is due, in batches. "
        "Resumes an unfinished run. With a broker configured, workers take the batches."
    )

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
            self._table(
                [(line.policy, line.due) for line in purge_dry_run()], "would go"
            )
            self.stdout.write("Dry run: nothing was changed.")
            return
        total = sum(disposable(p).count() for p in policy_list(enabled_only=True))
        quiet = options["verbosity"] == 0
        with tqdm(total=total, unit="row", desc="Disposing", disable=quiet) as bar:
            try:
                if settings.CELERY_TASK_ALWAYS_EAGER or here:
                    result = purge_run(
                        actor=None,
                        batch_size=batch_size,
                        on_batch=lambda code, n: bar.update(n),
                    )
                    run = result.run
                else:
                    run = self._fan_out(batch_size, bar)
            except DomainError as exc:
                raise CommandError(str(exc)) from exc
            # The total counts a customer once per policy due; one disposed by an
            # earlier policy (shredded, say) is no longer due under a later one.
            bar.total = bar.n
            bar.refresh()
        progress = run.progress.select_related("policy").order_by("policy__code")
        self._table([(p.policy, p.disposed) for p in progress], "disposed")
        self.stdout.write(
            f"Run {run.pk}: {run.get_status_display().lower()}, "
            f"{sum(p.disposed for p in progress)} rows disposed."
        )

    def _fan_out(self, batch_size: int, bar):
        run = purge_fan_out(actor=None, batch_size=batch_size)
        seen = 0
        while True:
            run.refresh_from_db()
            done = sum(
                DisposalProgress.objects.filter(run=run).values_list(
                    "disposed", flat=True
                )
            )
            bar.update(done - seen)
            seen = done
            if run.status != RunStatus.RUNNING:
                return run
            time.sleep(0.5)

    def _table(self, rows, heading: str) -> None:
        self.stdout.write(f"{'policy':<22} {'covers':<20} {'action':<13} {heading:>10}")
        for policy, count in rows:
            self.stdout.write(
                f"{policy.code:<22} {policy.covers:<20} {policy.action:<13} {count:>10}"
            )
