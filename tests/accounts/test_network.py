"""The client's address: the connection's own, or behind AMANAH_PROXY_COUNT proxies
the one they saw; axes, the DRF throttles and consent evidence all use it."""

import pytest
from django.test import RequestFactory

from apps.accounts.network import client_address

PROXY = "10.0.0.2"


def _request(forwarded: str | None = None, remote: str = PROXY):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


@pytest.mark.parametrize(
    ("count", "forwarded", "expected"),
    [
        (0, None, PROXY),
        (0, "203.0.113.5", PROXY),  # no proxy: the header is the client's own say
        (1, None, PROXY),
        (1, "203.0.113.5", "203.0.113.5"),
        (1, "192.0.2.66, 203.0.113.5", "203.0.113.5"),  # a spoofed hop is not trusted
        (1, " 192.0.2.66 ,203.0.113.5 ", "203.0.113.5"),
        (2, "192.0.2.66, 203.0.113.5, 10.0.0.1", "203.0.113.5"),
        (2, "203.0.113.5", "203.0.113.5"),  # fewer hops than proxies: the first
        (1, "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_client_address(settings, count, forwarded, expected):
    settings.AMANAH_PROXY_COUNT = count
    assert client_address(_request(forwarded)) == expected


@pytest.mark.parametrize("forwarded", ["not-an-address", "203.0.113.5:4711", ""])
def test_a_hop_that_is_not_an_address_falls_back_to_the_connection(settings, forwarded):
    settings.AMANAH_PROXY_COUNT = 1
    assert client_address(_request(forwarded)) == PROXY


@pytest.mark.parametrize("count", [0, 1, 2])
@pytest.mark.parametrize(
    "forwarded",
    [
        None,
        "203.0.113.5",
        "192.0.2.66, 203.0.113.5",
        "192.0.2.66, 203.0.113.5, 10.0.0.1",
        "unknown",
    ],
)
def test_the_drf_throttles_see_the_same_address(settings, count, forwarded):
    from apps.accounts.throttling import ClientAddressThrottle

    settings.AMANAH_PROXY_COUNT = count
    request = _request(forwarded)
    assert ClientAddressThrottle().get_ident(request) == client_address(request)


def test_every_api_throttle_counts_by_that_address(settings):
    # The per-token limit falls back to the address for a request without credentials.
    from apps.accounts.throttling import rate_ident

    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] == [
        "apps.accounts.throttling.ApiRateThrottle",
        "apps.accounts.throttling.ClientAddressThrottle",
    ]
    settings.AMANAH_PROXY_COUNT = 1
    request = _request("192.0.2.66, 203.0.113.5")
    request.auth = None
    request.user = None
    assert rate_ident(request) == f"address:{client_address(request)}"


def test_consent_evidence_hashes_the_same_address(settings):
    from apps.consent.services import evidence_hash
    from apps.portal.views import request_evidence

    settings.AMANAH_PROXY_COUNT = 1
    request = _request("192.0.2.66, 203.0.113.5")
    assert request_evidence(request) == evidence_hash(ip="203.0.113.5", user_agent="")
