"""API authentication: API tokens (sent as `Bearer` or `Token`), and sessions only
once fully signed in."""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import (
    BaseAuthentication,
    SessionAuthentication,
    get_authorization_header,
)
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from apps.accounts.models import ApiToken, ApiTokenKind, User
from apps.accounts.selectors import token_get_with_user, user_needs_second_factor
from apps.accounts.services import api_token_touch

# The Authorization schemes a token may come under: `Bearer` (RFC 6750, what generated
# clients send) and `Token` (what this API asked for before, still accepted).
TOKEN_SCHEMES = (b"bearer", b"token")


class ApiTokenAuthentication(BaseAuthentication):
    """An API token (`apps.accounts.models.ApiToken`) as `Authorization: Bearer <key>`
    or `Token <key>`. Refused (401): an unknown key, a revoked or expired token, an
    inactive user, anyone but staff (a customer's token, from before tokens were
    staff-only). `request.auth` is the token: its `scopes` are what it may do."""

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() not in TOKEN_SCHEMES:
            return None
        # DRF's own messages (and translations) for a malformed header.
        if len(parts) == 1:
            raise AuthenticationFailed(
                _("Invalid token header. No credentials provided.")
            )
        if len(parts) > 2:
            raise AuthenticationFailed(
                _("Invalid token header. Token string should not contain spaces.")
            )
        try:
            key = parts[1].decode()
        except UnicodeError:
            raise AuthenticationFailed(
                _(
                    "Invalid token header. "
                    "Token string should not contain invalid characters."
                )
            ) from None
        return self.authenticate_credentials(key)

    def authenticate_credentials(self, key: str) -> tuple[User, ApiToken]:
        # One prepared statement, the token and its user (every API call makes it).
        token = token_get_with_user(key=key)
        if token is None or not token.user.is_staff_role:
            raise AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        if token.revoked_at is not None:
            raise AuthenticationFailed("The token has been revoked.")
        if token.expires_at <= timezone.now():
            if token.kind == ApiTokenKind.SIGN_IN:
                raise AuthenticationFailed("The token has expired; sign in again.")
            raise AuthenticationFailed(
                "The token has expired; make a new one on the security page."
            )
        api_token_touch(token=token)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        # The WWW-Authenticate of a 401: DRF answers 403 to a scheme without one.
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI description of `ApiTokenAuthentication`: HTTP bearer, so that
    generated clients send `Authorization: Bearer <key>`."""

    target_class = "apps.accounts.authentication.ApiTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "An API token: from `POST /api/v1/auth/token/` (a sign-in's, every "
                "scope the role allows, for `AMANAH_TOKEN_HOURS`), or a named token "
                "made on the security page or at `/api/v1/auth/tokens/` (its scopes, "
                "its own expiry). Sent as `Authorization: Bearer <key>`; "
                "`Authorization: Token <key>` is accepted too."
            ),
        }


class VerifiedSessionAuthentication(SessionAuthentication):
    """A browser session counts for the API only after its second factor."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is not None and user_needs_second_factor(user=result[0]):
            return None
        return result


class VerifiedSessionScheme(SessionScheme):
    """The OpenAPI description of `VerifiedSessionAuthentication`: a session cookie."""

    target_class = "apps.accounts.authentication.VerifiedSessionAuthentication"
