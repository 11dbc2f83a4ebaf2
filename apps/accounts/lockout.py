"""Sign-in lockout, on django-axes (`AXES_HANDLER`, `AXES_LOCKOUT_CALLABLE`).

Failed sign-ins lock the username (for customers a keyed hash of the email address)
from every address after `AXES_FAILURE_LIMIT` failures; an address is locked only
after `AMANAH_ADDRESS_FAILURE_LIMIT` failures, so that one person's mistakes never
lock out the colleagues behind the same NAT or proxy. A username nobody has is
counted like a real one: its lock answers the same, so it tells nothing.
"""

import math
from dataclasses import dataclass
from datetime import datetime

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import (
    get_client_username,
    get_cool_off,
    get_failure_limit,
    get_lockout_parameters,
)
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import QuerySet, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone


@dataclass(frozen=True)
class SignInLock:
    retry_after: int  # seconds until a sign-in is allowed again

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after / 60))

    @property
    def message(self) -> str:
        unit = "minute" if self.minutes == 1 else "minutes"
        return f"Too many failed sign-ins. Try again in {self.minutes} {unit}."


class SignInLockoutHandler(AxesDatabaseHandler):
    """Axes' database handler, with a limit of its own for the address.

    Axes counts failures for each entry of `AXES_LOCKOUT_PARAMETERS` but compares the
    largest count with one limit, and an `AXES_FAILURE_LIMIT` callable is not told
    which count it is compared with; so the limits per entry are applied here, in
    the method axes leaves to handlers (`get_failures`).
    """

    def get_failures(self, request, credentials: dict | None = None) -> int:
        """The failures axes compares with AXES_FAILURE_LIMIT: the username's, or
        that limit itself once the address has reached its own."""
        limit = get_failure_limit(request, credentials)
        worst = 0
        for recent, own_limit in self._counted(request, credentials):
            failures = _failures(recent)
            if own_limit != limit:
                failures = limit if failures >= own_limit else 0
            worst = max(worst, failures)
        return worst

    def reset_user_attempts(self, request, credentials: dict | None = None) -> int:
        """After a successful sign-in, forget that username's failures only.

        Axes would also forget every failure from the address: someone with an
        account of their own could then sign in between guesses at a colleague's
        password and never reach either limit.
        """
        username = get_client_username(request, credentials)
        count, _ = AccessAttempt.objects.filter(username=username).delete()
        return count

    def sign_in_lock(
        self, request, credentials: dict | None = None
    ) -> SignInLock | None:
        """How long the sign-in that `request` tries stays locked; None if it is not."""
        cool_off = get_cool_off(request)
        if cool_off is None:
            return None
        ends: list[datetime] = []
        for recent, limit in self._counted(request, credentials):
            # Axes counts a row's failures until its last one is older than the
            # cool-off: the lock ends when enough of the oldest rows have gone.
            rows = list(
                recent.order_by("attempt_time").values_list(
                    "attempt_time", "failures_since_start"
                )
            )
            left = sum(failures for _, failures in rows)
            for attempt_time, failures in rows:
                if left < limit:
                    break
                left -= failures
                ends.append(attempt_time + cool_off)
        if not ends:
            return None
        now = getattr(request, "axes_attempt_time", None) or timezone.now()
        seconds = math.ceil((max(ends) - now).total_seconds())
        return SignInLock(retry_after=max(1, seconds))

    def _counted(
        self, request, credentials: dict | None
    ) -> list[tuple[QuerySet[AccessAttempt], int]]:
        """Each entry's failures within the cool-off, with its limit."""
        parameters = get_lockout_parameters(request, credentials)
        attempts = self.get_user_attempts(request, credentials)
        return [
            (recent, _limit_for(parameter, request, credentials))
            for parameter, recent in zip(parameters, attempts, strict=True)
        ]


def _limit_for(parameter: str | list[str], request, credentials) -> int:
    if parameter in ("ip_address", ["ip_address"]):
        return settings.AMANAH_ADDRESS_FAILURE_LIMIT
    return get_failure_limit(request, credentials)


def _failures(attempts: QuerySet[AccessAttempt]) -> int:
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0


def sign_in_lock_for(request, credentials: dict | None = None) -> SignInLock:
    """How long the locked sign-in `request` stays locked (the whole cool-off if the
    handler cannot tell)."""
    handler = AxesProxyHandler.get_implementation()
    lock = None
    if isinstance(handler, SignInLockoutHandler):
        lock = handler.sign_in_lock(request, credentials)
    if lock is None:
        lock = SignInLock(retry_after=int(get_cool_off(request).total_seconds()))
    return lock


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """`AXES_LOCKOUT_CALLABLE`: the answer to a locked sign-in, 429 with Retry-After.

    It names neither the username nor the limit (axes' own JSON answer does both).
    """
    lock = sign_in_lock_for(request, credentials)
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse(
            {"detail": lock.message, "code": "locked"}, status=429
        )
    else:
        response = render(
            request,
            "accounts/locked_out.html",
            {"lock": lock, "customer": request.path == reverse("portal:login")},
            status=429,
        )
    response["Retry-After"] = str(lock.retry_after)
    return response
