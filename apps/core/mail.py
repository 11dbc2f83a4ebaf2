"""What a failed send means: the mail server's refusal of an address for good (5xx),
after which trying again only blocks the messages behind it."""

import smtplib


def refused_for_good(exc: Exception) -> bool:
    """Whether the mail server refused every recipient of the message for good."""
    if not isinstance(exc, smtplib.SMTPRecipientsRefused) or not exc.recipients:
        return False
    return all(code >= 500 for code, _ in exc.recipients.values())
