"""Delivery channels for incident notices, as adapters (like Django's email backends).

Email goes through Django's mail backend; SMS is a logging backend until a provider is
configured; in-app notices need no delivery: the customer reads them on /me/notices/.
`AMANAH_NOTICE_CHANNELS` maps a channel to a class.
"""

import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class DeliveryFailed(Exception):
    """The channel refused or bounced the message (the reason carries no PII)."""


class EmailChannel:
    def send(self, *, notice, address: str) -> None:
        if not address:
            raise DeliveryFailed("no email address on record")
        EmailMessage(subject=notice.subject, body=notice.body, to=[address]).send()


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
