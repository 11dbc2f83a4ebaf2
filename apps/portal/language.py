"""Which language a request is answered in.

A signed-in customer's saved choice (Customer.language, kept in their session at
sign-in and whenever it changes, so no query is needed per request) wins; else the
language cookie the switcher sets; else the browser's Accept-Language (both read by
Django's LocaleMiddleware). Staff pages stay English whatever the browser asks.
"""

from django.conf import settings
from django.http import HttpRequest
from django.utils import translation

from apps.core.i18n import language_codes

SESSION_LANGUAGE = "amanah_language"

# Pages customers (or anyone, signed out) read: answered in the customer's language.
CUSTOMER_PREFIXES = ("/me/", "/u/", "/privacy/", "/status/", "/receipts/verify/")
# Pages both read: the customer's language for a customer (or a signed-out
# visitor), English for staff.
SHARED_PATHS = (
    "/",
    "/accounts/security/",
    # Two-step sign-in: set up (from the security page), the code at sign-in, and
    # the recovery codes both show.
    "/accounts/2fa/setup/",
    "/accounts/2fa/verify/",
)


def language_remember(request: HttpRequest, code: str) -> None:
    """Keep a signed-in customer's saved language in their session (blank: none)."""
    if code in language_codes():
        request.session[SESSION_LANGUAGE] = code
    else:
        request.session.pop(SESSION_LANGUAGE, None)


def _is_customer_page(request: HttpRequest) -> bool:
    path = request.path_info
    if path.startswith(CUSTOMER_PREFIXES):
        return True
    if path in SHARED_PATHS:
        user = getattr(request, "user", None)
        return user is None or not user.is_authenticated or user.role == "customer"
    return False


class CustomerLanguageMiddleware:
    """After LocaleMiddleware and AuthenticationMiddleware: the saved choice over the
    cookie and the browser on customer pages; English on staff pages."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        # base.html offers the language switcher on customer pages only.
        request.customer_page = _is_customer_page(request)  # type: ignore[attr-defined]
        if request.customer_page:  # type: ignore[attr-defined]
            code = request.session.get(SESSION_LANGUAGE)
            if code not in language_codes():
                code = None
        else:
            code = settings.LANGUAGE_CODE
        if code and code != request.LANGUAGE_CODE:
            translation.activate(code)
            request.LANGUAGE_CODE = code
        return self.get_response(request)
