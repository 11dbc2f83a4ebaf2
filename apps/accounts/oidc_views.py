"""The two doors of signing in through the company's OpenID provider: the start
(to the provider's sign-in page) and the callback (back with a code)."""

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import View
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from apps.accounts.errors import AccountError
from apps.accounts.oidc import oidc_config, provider_get
from apps.accounts.oidc_auth import library_setting
from apps.accounts.services import session_verify


def _refused(request: HttpRequest, error: AccountError) -> HttpResponse:
    """A page saying why, with the way back to the sign-in page."""
    return render(
        request,
        "accounts/oidc_refused.html",
        {"message": error.message, "code": error.code},
        status=error.status,
    )


class OidcStartView(OIDCAuthenticationRequestView):
    """Off to the provider's authorization endpoint (from its discovery document)."""

    get_settings = staticmethod(library_setting)

    def __init__(self, **kwargs: Any) -> None:
        # The library reads the endpoint here; it is read in dispatch, where a
        # provider that is down can be answered with a page.
        View.__init__(self, **kwargs)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        config = oidc_config()
        if config is None:
            raise Http404
        try:
            provider = provider_get(config)
        except AccountError as error:
            return _refused(request, error)
        self.OIDC_OP_AUTH_ENDPOINT = provider.authorization_endpoint
        self.OIDC_RP_CLIENT_ID = config.client_id
        return super().dispatch(request, *args, **kwargs)


class OidcCallbackView(OIDCAuthenticationCallbackView):
    """Back from the provider: the library checks the state and (through
    `OidcBackend`) the code, the ID token and the nonce; Amanah's rules decide."""

    get_settings = staticmethod(library_setting)

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if oidc_config() is None:
            raise Http404
        try:
            return super().dispatch(request, *args, **kwargs)
        except AccountError as error:
            return _refused(request, error)

    def login_success(self) -> HttpResponse:
        response = super().login_success()
        device = getattr(self.user, "oidc_mfa_device", None)
        if device is not None:
            # The provider's MFA counts: the session is verified as Amanah's own
            # second step verifies it (a new session key and CSRF token).
            session_verify(request=self.request, device=device)
        return response

    def login_failure(self) -> HttpResponse:
        return _refused(
            self.request,
            AccountError(
                "The sign-in with your company account did not complete. Start it "
                "again.",
                code="failed",
            ),
        )
