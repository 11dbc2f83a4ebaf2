from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import DomainError
from apps.monitoring.rules import RULES_BY_CODE
from apps.monitoring.services import rules_evaluate


class Command(BaseCommand):
    help = "Run the suspicious-access rules now (the beat task does every 5 minutes)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--rule",
            action="append",
            choices=sorted(RULES_BY_CODE),
            help="Only this rule (repeatable).",
        )

    def handle(self, *args, **options):
        try:
            raised = rules_evaluate(codes=options["rule"])
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        high = sum(1 for alert in raised if alert.severity == "high")
        self.stdout.write(f"{len(raised)} new alert(s), {high} high.")
