"""An email backend whose mail server drops the connection now and then, for the
paths that must retry a passing failure rather than lose the rest of a batch."""

import smtplib

from django.core.mail.backends.locmem import EmailBackend


class FlakyBackend(EmailBackend):
    """Django's test backend (mail.outbox), failing the sends numbered in `fail_on`
    (1 is the first message sent in the test), and refusing the addresses in
    `refuse` for good (550), as a mail server does an address that does not exist."""

    fail_on: frozenset[int] = frozenset()
    refuse: frozenset[str] = frozenset()
    attempts = 0

    def send_messages(self, messages):
        sent = 0
        for message in messages:
            type(self).attempts += 1
            if type(self).attempts in self.fail_on:
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            refused = {to: (550, b"No such user") for to in message.to}
            if set(message.to) <= self.refuse:
                raise smtplib.SMTPRecipientsRefused(refused)
            sent += super().send_messages([message])
        return sent


def flaky_mail(settings, *fail_on: int, refuse: tuple[str, ...] = ()) -> None:
    """Send this test's mail through a server that fails the given sends and refuses
    the given addresses."""
    FlakyBackend.fail_on, FlakyBackend.attempts = frozenset(fail_on), 0
    FlakyBackend.refuse = frozenset(refuse)
    settings.EMAIL_BACKEND = "tests.mail.FlakyBackend"
