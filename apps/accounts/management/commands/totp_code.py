from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.selectors import otp_current_code, user_get_by_username


class Command(BaseCommand):
    help = (
        "Development only: print the current authenticator code of a user, so demo "
        "sign-ins work without a phone."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        if not settings.DEBUG:
            raise CommandError("totp_code works only when DJANGO_DEBUG is on.")
        user = user_get_by_username(username=username)
        code = otp_current_code(user=user) if user is not None else None
        if code is None:
            raise CommandError(
                f"{username} has no authenticator yet: open the setup page first."
            )
        self.stdout.write(code)
