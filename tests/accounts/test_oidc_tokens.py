"""ID tokens are checked against the provider's JWKS (RS256, ES256), issuer, audience
and times; the refresh token is sealed; the beat job is scheduled."""

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.conf import settings

from apps.accounts.models import OidcIdentity
from apps.accounts.oidc import (
    OidcConfig,
    Provider,
    ProviderUnavailable,
    SignInRefused,
    id_token_verify,
)
from apps.accounts.oidc_services import oidc_refresh_token_get
from apps.crypto.errors import IntegrityFailure

ISSUER = "https://idp.example"
CONFIG = OidcConfig(
    issuer=ISSUER,
    client_id="amanah",
    client_secret="shared-secret-of-at-least-32-bytes!",
    scopes="openid",
    role_claim="groups",
    group_roles={"a": "support_agent"},
    mfa_amr=frozenset({"mfa"}),
)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key, kid: str, alg: str) -> dict:
    algorithm = (
        jwt.algorithms.ECAlgorithm if alg == "ES256" else jwt.algorithms.RSAAlgorithm
    )
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    return jwk | {"kid": kid, "alg": alg, "use": "sig"}


@pytest.fixture(scope="module")
def jwks_uri() -> Iterator[str]:
    body = json.dumps(
        {"keys": [_jwk(EC_KEY, "ec-1", "ES256"), _jwk(RSA_KEY, "rsa-1", "RS256")]}
    ).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/jwks"
    server.shutdown()


def _provider(jwks_uri: str) -> Provider:
    return Provider(
        issuer=ISSUER,
        authorization_endpoint=f"{ISSUER}/authorize",
        token_endpoint=f"{ISSUER}/token",
        jwks_uri=jwks_uri,
        userinfo_endpoint=None,
        token_auth_basic=True,
    )


def _claims(**overrides) -> dict:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": "amanah",
        "sub": "emp-1",
        "iat": now,
        "exp": now + 300,
        "groups": ["a"],
    } | overrides


@pytest.mark.parametrize(
    ("key", "alg", "kid"), [(EC_KEY, "ES256", "ec-1"), (RSA_KEY, "RS256", "rsa-1")]
)
def test_signed_id_token_verifies(jwks_uri, key, alg, kid):
    token = jwt.encode(_claims(), key, algorithm=alg, headers={"kid": kid})

    claims = id_token_verify(token, config=CONFIG, provider=_provider(jwks_uri))

    assert claims["sub"] == "emp-1"
    assert claims["groups"] == ["a"]


@pytest.mark.parametrize(
    "make",
    [
        # A shared-secret token (the client secret as its key) is never accepted.
        lambda: jwt.encode(_claims(), CONFIG.client_secret, algorithm="HS256"),
        lambda: jwt.encode(_claims(), None, algorithm="none"),
        lambda: jwt.encode(
            _claims(aud="another-client"), EC_KEY, "ES256", {"kid": "ec-1"}
        ),
        lambda: jwt.encode(_claims(iss="https://evil.example"), EC_KEY, "ES256"),
        lambda: jwt.encode(_claims(exp=int(time.time()) - 3600), EC_KEY, "ES256"),
        # Signed by a key that is not the provider's, under the provider's key id.
        lambda: jwt.encode(
            _claims(), ec.generate_private_key(ec.SECP256R1()), "ES256", {"kid": "ec-1"}
        ),
        lambda: "not-a-token",
    ],
)
def test_bad_id_tokens_are_refused(jwks_uri, make):
    with pytest.raises(SignInRefused, match="could not be verified"):
        id_token_verify(make(), config=CONFIG, provider=_provider(jwks_uri))


def test_unreachable_jwks_is_the_provider_being_down():
    token = jwt.encode(_claims(), EC_KEY, algorithm="ES256", headers={"kid": "ec-1"})
    with pytest.raises(ProviderUnavailable):
        id_token_verify(
            token, config=CONFIG, provider=_provider("http://127.0.0.1:9/jwks")
        )


@pytest.mark.django_db
def test_tampered_refresh_token_does_not_open(support_agent):
    from apps.accounts.oidc_services import _refresh_token_store

    identity = OidcIdentity.objects.create(
        user=support_agent, issuer=ISSUER, subject="emp-1"
    )
    _refresh_token_store(identity, "rt-secret-value")
    identity.save()
    assert oidc_refresh_token_get(identity=identity) == "rt-secret-value"
    blob = bytearray(identity.refresh_token_sealed)
    blob[-1] ^= 1
    identity.refresh_token_sealed = bytes(blob)

    with pytest.raises(IntegrityFailure):
        oidc_refresh_token_get(identity=identity)


def test_beat_schedules_the_hourly_check():
    entry = settings.CELERY_BEAT_SCHEDULE["accounts-oidc-accounts-check"]
    assert entry["task"] == "accounts.oidc_accounts_check"
    assert entry["schedule"].minute == {23}
