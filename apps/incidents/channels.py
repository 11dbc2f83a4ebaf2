"""Delivery channels for incident notices, as adapters (like Django's email backends).

Email goes through Django's mail backend; SMS is a logging backend until a provider is
configured; in-app notices need no delivery: the customer reads them on /me/notices/.
`AMANAH_NOTICE_CHANNELS` maps a channel to a class.

An adapter says how a send failed: `DeliveryFailed` for good (no address, an address
the provider refuses), `DeliveryDeferred` for now (provider down: try again later).
Either carries a reason that is a category, never an address: it is stored, shown and
counted on the incident page.
"""

import logging
import smtplib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.core.validators import validate_email
from django.utils.module_loading import import_string

from apps.core.mail import refused_for_good

logger = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """The channel refused or bounced the message for good (the reason carries no
    PII)."""


class DeliveryDeferred(Exception):
    """The channel could not take the message now; a later attempt may succeed (the
    reason carries no PII)."""


class EmailChannel:
    def send(self, *, notice, address: str) -> None:
        if not address:
            raise DeliveryFailed("no email address on record")
        try:
            validate_email(address)
        except ValidationError:
            raise DeliveryFailed("invalid email address") from None
        try:
            EmailMessage(subject=notice.subject, body=notice.body, to=[address]).send()
        except smtplib.SMTPRecipientsRefused as exc:
            # 5xx: the server will never take this address; 4xx: not now.
            if refused_for_good(exc):
                raise DeliveryFailed("address refused by the mail server") from None
            raise DeliveryDeferred("address deferred by the mail server") from None
        except OSError:  # smtplib's errors, refused connections, timeouts
            raise DeliveryDeferred("mail server unavailable") from None


class LoggingSmsChannel:
    def send(self, *, notice, address: str) -> None:
        if not address:
            raise DeliveryFailed("no phone number on record")
        logger.info("incidents.sms_sent", extra={"notice": notice.pk})


class InAppChannel:
    def send(self, *, notice, address: str) -> None:
        logger.info("incidents.in_app_posted", extra={"notice": notice.pk})


DEFAULT_CHANNELS = {
    "email": "apps.incidents.channels.EmailChannel",
    "sms": "apps.incidents.channels.LoggingSmsChannel",
    "in_app": "apps.incidents.channels.InAppChannel",
}


def channel(name: str):
    paths = {**DEFAULT_CHANNELS, **getattr(settings, "AMANAH_NOTICE_CHANNELS", {})}
    return import_string(paths[name])()
