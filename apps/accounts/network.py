"""The address a request came from, the same for every reader: the sign-in lockout
(django-axes, `AXES_CLIENT_IP_CALLABLE`), the API throttles (`ClientAddressThrottle`)
and consent evidence."""

import ipaddress
import logging

from django.conf import settings
from django.http import HttpRequest

logger = logging.getLogger(__name__)


def client_address(request: HttpRequest) -> str:
    """The connection's address, or behind `AMANAH_PROXY_COUNT` proxies the one the
    outermost proxy saw.

    Each proxy appends the address it saw to X-Forwarded-For, so the trusted entry is
    that many from the right; anything left of it is whatever the client chose to send.
    (DRF's rule for `NUM_PROXIES`; the throttles call this function itself.)
    """
    remote = request.META.get("REMOTE_ADDR", "")
    count = settings.AMANAH_PROXY_COUNT
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if count <= 0 or forwarded is None:
        return remote
    hops = forwarded.split(",")
    hop = hops[-min(count, len(hops))].strip()
    try:
        ipaddress.ip_address(hop)
    except ValueError:
        # A proxy that writes something else (a port, a name) is misconfigured; its own
        # address still counts, and the stored value stays an address.
        logger.warning("accounts.forwarded_for_unreadable", extra={"hops": len(hops)})
        return remote
    return hop
