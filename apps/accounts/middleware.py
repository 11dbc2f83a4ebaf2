"""Session rules for signed-in people: idle expiry and the staff second factor."""

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode

from apps.accounts.models import Role
from apps.accounts.permissions import sign_in_next
from apps.accounts.selectors import user_needs_second_factor

_LAST_SEEN = "amanah_last_seen"
# Writing the session on every request costs a query; a minute's precision is enough.
_TOUCH_EVERY_SECONDS = 60


class SessionIdleTimeoutMiddleware:
    """Signs out a session left idle for `AMANAH_SESSION_IDLE_MINUTES`.

    `SESSION_COOKIE_AGE` stays the absolute limit; this is the inactivity one.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = int(time.time())
            last = request.session.get(_LAST_SEEN)
            idle = settings.AMANAH_SESSION_IDLE_MINUTES * 60
            if last is not None and now - last > idle:
                customer = request.user.role == Role.CUSTOMER
                logout(request)
                messages.info(
                    request, "You were signed out after a period of inactivity."
                )
                return redirect("portal:login" if customer else "accounts:login")
            if last is None or now - last >= _TOUCH_EVERY_SECONDS:
                request.session[_LAST_SEEN] = now
        return self.get_response(request)


def second_factor_redirect(request: HttpRequest, step: str) -> HttpResponse:
    """To the setup or verify page, coming back to this page afterwards.

    Only what `sign_in_next` allows travels in `next`: the path, never its query
    string (a searched email address or phone number) or a token in it.
    """
    target = reverse(f"accounts:otp-{step}")
    back = sign_in_next(request)
    if back is None:
        return redirect(target)
    return redirect(f"{target}?{urlencode({'next': back})}")


class TwoFactorRequiredMiddleware:
    """Sends a signed-in person who still owes a second factor to give it.

    Staff without a confirmed device go to set one up; anyone with a device (staff,
    or a customer who chose one) goes to enter a code. The API is guarded by its own
    authentication class (`apps.accounts.authentication`), not here.
    """

    # Sign-in itself, public pages and links that work without signing in.
    _open_prefixes = (
        "/accounts/",
        "/api/",
        "/static/",
        "/me/login/",
        "/me/logout/",
        "/me/confirm/",
        "/me/password-reset/",
        "/me/reset/",
        "/u/",
        "/privacy/",
        "/status",
    )

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if user.is_authenticated and not request.path.startswith(self._open_prefixes):
            step = user_needs_second_factor(user=user)
            if step is not None:
                return second_factor_redirect(request, step)
        return self.get_response(request)
