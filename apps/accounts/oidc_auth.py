"""The authentication backend for staff signing in through the company's OpenID
provider: mozilla-django-oidc's code flow (state, nonce, PKCE, the token request),
with Amanah's checks of the ID token and Amanah's accounts (`oidc_services`)."""

from typing import Any

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from apps.accounts.models import User
from apps.accounts.oidc import (
    PROVIDER_TIMEOUT,
    OidcConfig,
    Provider,
    ProviderUnavailable,
    SignInRefused,
    id_token_verify,
    oidc_config,
    provider_get,
    userinfo_get,
)
from apps.accounts.oidc_services import oidc_sign_in

# What the library reads through `get_settings`, fixed here (the rest from Django's
# settings: LOGIN_REDIRECT_URL and the library's own defaults).
_FIXED: dict[str, Any] = {
    "OIDC_RP_SIGN_ALGO": "RS256",  # verify_token below accepts RS256 and ES256
    "OIDC_USE_NONCE": True,
    "OIDC_USE_PKCE": True,
    "OIDC_TIMEOUT": PROVIDER_TIMEOUT,
    "OIDC_AUTHENTICATION_CALLBACK_URL": "accounts:oidc-callback",
    "OIDC_STORE_ACCESS_TOKEN": False,  # nosec B105 - a flag, not a password
    "OIDC_STORE_ID_TOKEN": False,  # nosec B105 - a flag, not a password
    "OIDC_CREATE_USER": False,
    "OIDC_ALLOW_UNSECURED_JWT": False,
    "OIDC_VERIFY_SSL": True,
}


def library_setting(attr: str, *default: Any) -> Any:
    """A mozilla-django-oidc setting, from AMANAH_OIDC_* and the discovery document
    rather than Django settings of its own."""
    if attr in _FIXED:
        return _FIXED[attr]
    config = oidc_config()
    if config is not None:
        if attr == "OIDC_RP_CLIENT_ID":
            return config.client_id
        if attr == "OIDC_RP_CLIENT_SECRET":
            return config.client_secret
        if attr == "OIDC_RP_SCOPES":
            return config.scopes
        if attr == "OIDC_TOKEN_USE_BASIC_AUTH":
            return provider_get(config).token_auth_basic
    if default:
        return getattr(settings, attr, default[0])
    return getattr(settings, attr)


class OidcBackend(OIDCAuthenticationBackend):
    """Answers only the OIDC callback (`nonce` given); None for anything else, and
    when OIDC is off. Refusals raise an AccountError the callback view shows."""

    get_settings = staticmethod(library_setting)
    # The session's user, only while active (the library's would load any).
    get_user = ModelBackend.get_user

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Django builds the session's backend on every request of a signed-in user:
        # read nothing and ask the provider nothing here (the library does both).
        self.UserModel = get_user_model()

    def authenticate(self, request: Any, **kwargs: Any) -> User | None:
        config = oidc_config()
        if request is None or "nonce" not in kwargs or config is None:
            return None
        self.config: OidcConfig = config
        self.provider: Provider = provider_get(config)
        self.token_info: dict[str, Any] = {}
        return super().authenticate(request, **kwargs)

    @property
    def OIDC_OP_TOKEN_ENDPOINT(self) -> str:
        return self.provider.token_endpoint

    @property
    def OIDC_RP_CLIENT_ID(self) -> str:
        return self.config.client_id

    @property
    def OIDC_RP_CLIENT_SECRET(self) -> str:
        return self.config.client_secret

    def get_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            self.token_info = super().get_token(payload)
        except requests.HTTPError as error:
            status = getattr(error.response, "status_code", 0)
            if 400 <= status < 500:
                # A code used twice, expired or not ours: start again.
                raise SignInRefused(
                    "The sign-in could not be completed. Start it again."
                ) from None
            raise ProviderUnavailable(
                "The identity provider cannot be reached."
            ) from None
        except requests.RequestException:
            raise ProviderUnavailable(
                "The identity provider cannot be reached."
            ) from None
        return self.token_info

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        """The ID token's claims: signature (the provider's JWKS), issuer, audience,
        times and the nonce this browser's sign-in started with."""
        if not isinstance(token, str):
            raise SignInRefused("The identity provider sent no ID token.")
        payload = id_token_verify(token, config=self.config, provider=self.provider)
        if payload.get("nonce") != kwargs.get("nonce"):
            raise SignInRefused("The identity provider's answer could not be verified.")
        return payload

    def get_or_create_user(
        self, access_token: str, id_token: str, payload: dict[str, Any]
    ) -> User:
        userinfo = (
            userinfo_get(provider=self.provider, access_token=access_token)
            if access_token
            else {}
        )
        if userinfo.get("sub", payload["sub"]) != payload["sub"]:
            # OpenID Connect Core 5.3.2: userinfo of someone else is not to be used.
            raise SignInRefused("The identity provider's answer could not be verified.")
        signed_in = oidc_sign_in(
            config=self.config,
            subject=payload["sub"],
            # The signed ID token's claims win over userinfo's.
            claims={**userinfo, **payload},
            amr=payload.get("amr"),
            refresh_token=self.token_info.get("refresh_token"),
        )
        user = signed_in.user
        # For the callback view, which marks the session verified with it.
        user.oidc_mfa_device = signed_in.mfa_device  # type: ignore[attr-defined]
        return user
