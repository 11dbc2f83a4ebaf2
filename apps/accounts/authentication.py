"""API authentication: tokens that expire, and sessions only once fully signed in."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.authentication import SessionScheme
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from apps.accounts.selectors import token_get_with_user, user_needs_second_factor
from apps.accounts.services import token_is_expired


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token, refused once older than `AMANAH_TOKEN_HOURS`, and refused for
    anyone but staff (a customer's token, from before tokens were staff-only)."""

    def authenticate_credentials(self, key):
        # DRF's own checks and messages, on one prepared statement instead of the
        # ORM's query (every API call makes it).
        token = token_get_with_user(key=key)
        if token is None or not token.user.is_staff_role:
            raise AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        if token_is_expired(token=token):
            raise AuthenticationFailed("The token has expired; sign in again.")
        return token.user, token


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
