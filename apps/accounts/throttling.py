"""The API's throttle: DRF's per-scope rates, counted per client address as every
other reader sees it (`apps.accounts.network.client_address`), in the shared cache."""

from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle

from apps.accounts.network import client_address


class ClientAddressThrottle(ScopedRateThrottle):
    def get_ident(self, request: Request) -> str:
        return client_address(request)
