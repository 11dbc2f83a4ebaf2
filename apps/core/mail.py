"""What a failed send means: the mail server's refusal of an address for good (5xx),
after which trying again only blocks the messages behind it."""

import logging
import smtplib
from typing import Any

from django.core.mail import EmailMessage

logger = logging.getLogger(__name__)


def refused_for_good(exc: Exception) -> bool:
    """Whether the mail server refused every recipient of the message for good."""
    if not isinstance(exc, smtplib.SMTPRecipientsRefused) or not exc.recipients:
        return False
    return all(code >= 500 for code, _ in exc.recipients.values())


def send_unless_refused(message: EmailMessage, *, event: str, **ids: Any) -> bool:
    """Send `message`. An address the mail server refuses for good is logged as
    `event` with `ids` (never the address) and skipped: False. Any other failure
    raises, for the caller's retry."""
    try:
        message.send()
    except smtplib.SMTPRecipientsRefused as exc:
        if not refused_for_good(exc):
            raise
        logger.warning(event, extra=ids)
        return False
    return True
