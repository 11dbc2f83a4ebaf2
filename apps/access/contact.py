"""Masked contact: provider adapters that hand out virtual numbers for interactions.

Like Django's email backends: `AMANAH_CONTACT_BACKEND` names the class. The default logs
what a provider would do, so development needs no telephony account.
"""

import logging
import secrets

from django.conf import settings
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class BaseContactBackend:
    def provision(self, *, interaction_id: str) -> str:
        """Reserve an alias (virtual number) routed to this interaction."""
        raise NotImplementedError

    def release(self, *, alias: str, interaction_id: str) -> None:
        """Stop routing the alias."""
        raise NotImplementedError


class LoggingContactBackend(BaseContactBackend):
    """Virtual numbers in the fictional +1 555 range; nothing leaves the machine."""

    def provision(self, *, interaction_id: str) -> str:
        alias = f"+1555{secrets.randbelow(10**7):07d}"
        logger.info("contact.alias_provisioned", extra={"interaction": interaction_id})
        return alias

    def release(self, *, alias: str, interaction_id: str) -> None:
        logger.info("contact.alias_released", extra={"interaction": interaction_id})


def contact_backend() -> BaseContactBackend:
    return import_string(settings.AMANAH_CONTACT_BACKEND)()
