"""A real OpenID provider for the OIDC tests (oidc-provider-mock, in a thread), and
the browser's part of the round trip through it.

Three things real providers do that the mock does not are added to its Flask app
(`_extend`), each a switch of `Provider.options`: an ID token in the answer to a
refresh (Keycloak, Entra ID and Auth0 send one), claims the userinfo endpoint leaves
out (Entra ID sends groups in the ID token only), and an issuer ending in "/"
(Auth0). `expire_refresh_tokens` forgets a person's refresh tokens as a provider does
when they expire (the mock never expires them)."""

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import flask
import httpx
import oidc_provider_mock._app as mock_app
from authlib import jose
from django.test import Client
from django.urls import reverse
from oidc_provider_mock import run_server_in_thread

from apps.accounts.oidc import provider_forget

CLIENT_ID = "amanah-test"
CLIENT_SECRET = "amanah-test-secret"
GROUP_ROLES = (
    "amanah-support=support_agent,amanah-privacy=privacy_admin,"
    "amanah-compliance=compliance_officer,staff-all=support_agent"
)


DEFAULT_OPTIONS: dict[str, Any] = {
    # An ID token in the answer to a refresh, as real providers send.
    "refresh_id_token": True,
    # That ID token signed by a key that is not the provider's (under its key id).
    "refresh_id_token_forged": False,
    # Claims the userinfo endpoint leaves out.
    "userinfo_omit": (),
    # The issuer (discovery document and ID tokens) ends in "/".
    "issuer_slash": False,
}
# Each running provider's switches, by its base URL.
_options: dict[str, dict[str, Any]] = {}


def _base_url() -> str:
    return flask.request.host_url.rstrip("/")


def _issuer() -> str:
    base = _base_url()
    return base + "/" if _options.get(base, {}).get("issuer_slash") else base


_jwt_config = mock_app.OpenIDCode.get_jwt_config


def _jwt_config_with_issuer(self, grant, client=None):
    return _jwt_config(self, grant, client) | {"iss": _issuer()}


mock_app.OpenIDCode.get_jwt_config = _jwt_config_with_issuer


def _extend(app: flask.Flask) -> None:
    views = app.view_functions
    discovery = views["oidc-provider-mock.openid_config"]
    userinfo = views["oidc-provider-mock.userinfo"]
    token = views["oidc-provider-mock.issue_token"]

    def discovery_view():
        return flask.jsonify(discovery().get_json() | {"issuer": _issuer()})

    def userinfo_view():
        answer = userinfo()
        omit = _options[_base_url()]["userinfo_omit"]
        if not omit or answer.status_code != 200:
            return answer
        claims = answer.get_json()
        return flask.jsonify({k: v for k, v in claims.items() if k not in omit})

    def token_view():
        answer = token()
        if (
            flask.request.form.get("grant_type") != "refresh_token"
            or answer.status_code != 200
            or not _options[_base_url()]["refresh_id_token"]
        ):
            return answer
        body = answer.get_json()
        access = mock_app.storage.get_access_token(body["access_token"])
        user = mock_app.storage.get_user(access.user_id)
        auth = flask.request.authorization
        client_id = auth.username if auth else flask.request.form["client_id"]
        now = int(time.time())
        claims = mock_app._user_claims_for_scope(user, access.scope) | {
            "iss": _issuer(),
            "aud": client_id,
            "iat": now,
            "exp": now + 3600,
        }
        key = mock_app.storage.jwk.as_dict(is_private=True)
        if _options[_base_url()]["refresh_id_token_forged"]:
            forged = jose.RSAKey.generate_key(is_private=True)
            key = forged.as_dict(is_private=True) | {"kid": key["kid"]}
        id_token = jose.jwt.encode({"alg": "RS256", "kid": key["kid"]}, claims, key)
        return flask.jsonify(body | {"id_token": id_token.decode()})

    def expire_refresh_tokens(sub: str):
        for refresh in mock_app.storage.refresh_tokens():
            if refresh.user_id == sub:
                mock_app.storage.remove_refresh_token(refresh.token)
        return "", 204

    views["oidc-provider-mock.openid_config"] = discovery_view
    views["oidc-provider-mock.userinfo"] = userinfo_view
    views["oidc-provider-mock.issue_token"] = token_view
    app.add_url_rule(
        "/users/<sub>/expire-refresh-tokens",
        "expire_refresh_tokens",
        expire_refresh_tokens,
        methods=["POST"],
    )


@contextmanager
def provider_running() -> Iterator[str]:
    """A provider on a free port of localhost; yields its issuer URL."""
    # The provider speaks plain HTTP on localhost; authlib refuses that otherwise.
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    with run_server_in_thread(port=0) as server:
        base = f"http://localhost:{server.server_port}"
        _options[base] = dict(DEFAULT_OPTIONS)
        _extend(server.app)
        try:
            yield base
        finally:
            del _options[base]


class Provider:
    """The provider's own HTTP API: who its users are, and their tokens; and the
    switches of `_extend` (`options`, reset by `reset`)."""

    def __init__(self, issuer: str):
        self.issuer = issuer
        self.options = _options[issuer.rstrip("/")]

    def reset(self) -> None:
        self.options.clear()
        self.options.update(DEFAULT_OPTIONS)

    def expire_refresh_tokens(self, sub: str) -> None:
        response = httpx.post(f"{self.issuer}/users/{sub}/expire-refresh-tokens")
        assert response.status_code == 204, response.text

    def set_user(self, sub: str, **claims: object) -> None:
        response = httpx.put(f"{self.issuer}/users/{sub}", json=claims)
        assert response.status_code == 204, response.text

    def revoke_tokens(self, sub: str) -> None:
        response = httpx.post(f"{self.issuer}/users/{sub}/revoke-tokens")
        assert response.status_code == 204, response.text


def configure(settings, issuer: str) -> None:
    settings.AMANAH_OIDC_ISSUER = issuer
    settings.AMANAH_OIDC_CLIENT_ID = CLIENT_ID
    settings.AMANAH_OIDC_CLIENT_SECRET = CLIENT_SECRET
    settings.AMANAH_OIDC_GROUP_ROLES = GROUP_ROLES
    provider_forget()


def provider_sign_in(client: Client, sub: str, *, next_url: str = ""):
    """The browser's round trip: Amanah's start URL, the provider's authorization
    page and its form (as `sub`), back to Amanah's callback. Returns the callback's
    answer."""
    start = reverse("accounts:oidc-start")
    answer = client.get(start, {"next": next_url} if next_url else {})
    assert answer.status_code == 302, answer.content
    authorize = answer["Location"]
    page = httpx.get(authorize)
    assert page.status_code == 200
    assert "Authorize" in page.text
    back = httpx.post(authorize, data={"sub": sub})
    assert back.status_code == 302, back.text
    callback = urlsplit(back.headers["location"])
    assert callback.path == reverse("accounts:oidc-callback")
    return client.get(f"{callback.path}?{callback.query}")
