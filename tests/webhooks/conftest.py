import pytest
from django.core.cache import cache

from apps.webhooks import services
from apps.webhooks.services import _ANY_ENDPOINT
from tests.webhooks.receiver import Receiver

# Names the tests register endpoints under resolve to a public address (documentation
# tests never reach it); every other name is resolved for real.
PUBLIC = "93.184.215.14"


@pytest.fixture(autouse=True)
def _endpoints_forgotten(settings, monkeypatch):
    """A test's endpoints go with its database rows: the cache's note that some exist
    goes too (none do), so the tests after it emit nothing and ask nothing. Retries
    come at once; receivers on this machine (127.0.0.0/8) are allowed, as an
    on-premises network would be; `*.example` names resolve to a public address."""
    settings.AMANAH_WEBHOOK_ALLOW_HTTP = True
    settings.AMANAH_WEBHOOK_RETRY_SECONDS = 0
    settings.AMANAH_WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    real = services._resolve

    def resolve(host: str, port: int) -> list[str]:
        return [PUBLIC] if host.endswith(".example") else real(host, port)

    monkeypatch.setattr(services, "_resolve", resolve)
    cache.set(_ANY_ENDPOINT, 0)
    yield
    cache.set(_ANY_ENDPOINT, 0)


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()
