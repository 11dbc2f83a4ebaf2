import pytest

from apps.accounts.oidc import provider_forget
from tests.accounts.oidc_provider import Provider, configure, provider_running


@pytest.fixture(scope="module")
def issuer():
    """A real OpenID provider (oidc-provider-mock) for the module's tests."""
    with provider_running() as url:
        yield url


@pytest.fixture
def provider(settings, issuer):
    """Amanah configured against the provider; its users and switches reset after."""
    configure(settings, issuer)
    provider = Provider(issuer)
    yield provider
    provider.reset()
    provider_forget()
