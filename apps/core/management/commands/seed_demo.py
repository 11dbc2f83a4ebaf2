from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.models import Role
from apps.accounts.services import user_ensure_staff

DEMO_STAFF = (
    ("support", Role.SUPPORT_AGENT),
    ("delivery", Role.DELIVERY_AGENT),
    ("compliance", Role.COMPLIANCE_OFFICER),
    ("privacy_admin", Role.PRIVACY_ADMIN),
)
DEV_PASSWORD = "amanah-demo-2026"  # noqa: S105 - documented demo password


class Command(BaseCommand):
    help = "Create demo users (idempotent) and print how to sign in."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            help=f"Password for every demo user (development default: {DEV_PASSWORD}).",
        )

    def handle(self, *args, password: str | None, **options):
        if password is None:
            if not settings.DEBUG:
                raise CommandError("--password is required when DJANGO_DEBUG=0.")
            password = DEV_PASSWORD
        if len(password) < 12:
            raise CommandError("--password must be at least 12 characters.")
        for username, role in DEMO_STAFF:
            user_ensure_staff(
                actor=None, username=username, role=role, password=password
            )

        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(
            "Staff sign in at http://127.0.0.1:8000/accounts/login/ with:"
        )
        for username, role in DEMO_STAFF:
            self.stdout.write(f"  {username:<14} {role.label:<20} password: {password}")
