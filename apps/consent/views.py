import json
import logging
import time

from django.conf import settings
from django.shortcuts import render
from django.utils.decorators import method_decorator
from django.utils.translation import gettext, ngettext
from django.views import View
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from apps.accounts.throttling import ClientAddressThrottle
from apps.consent.forms import RECEIPT_MAX_BYTES, ReceiptVerifyForm
from apps.consent.receipts import receipts_readable, receipts_verify
from apps.crypto.errors import SignatureInvalid

logger = logging.getLogger(__name__)

TEMPLATE = "consent/receipt_verify.html"
# Sentences the page lists; a bigger bundle is counted, not listed.
SHOWN = 50
# The most a request may carry, read before its body is: a receipt pasted and one
# uploaded (multipart sends both as they are), or one pasted and URL-encoded (up to
# three bytes a byte), and room for the form's other fields.
BODY_MAX_BYTES = 3 * RECEIPT_MAX_BYTES + 64 * 1024
# After the shared cache failed a call, how long this process lets checks through
# uncounted before asking the cache again.
UNCOUNTED_SECONDS = 10


class ReceiptVerifyThrottle(ClientAddressThrottle):
    """Checks per client address (AMANAH_RECEIPT_VERIFY_RATE), in the shared cache.
    With the cache down the check goes on, uncounted: the page never errors."""

    # Until when (time.monotonic) this process counts nothing: the cache was down.
    uncounted_until = 0.0

    def get_rate(self) -> str:
        return settings.AMANAH_RECEIPT_VERIFY_RATE

    def allow_request(self, request, view) -> bool:
        if time.monotonic() < ReceiptVerifyThrottle.uncounted_until:
            return True
        try:
            return super().allow_request(request, view)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            logger.warning(
                "consent.receipt_verify_uncounted", extra={"error": type(exc).__name__}
            )
            ReceiptVerifyThrottle.uncounted_until = time.monotonic() + UNCOUNTED_SECONDS
            return True


def _content_length(request) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None


# CSRF is checked in `post`, after the size: Django's middleware would read (and
# spool to disk) the whole body first.
@method_decorator(csrf_exempt, name="dispatch")
class ReceiptVerifyView(View):
    """Anyone (no sign-in) checks a consent receipt against the published key."""

    throttle_scope = "receipt_verify"

    def get(self, request):
        return render(request, TEMPLATE, {"form": ReceiptVerifyForm()})

    def post(self, request):
        length = _content_length(request)
        if length is None or length > BODY_MAX_BYTES:
            return self._refuse(
                request,
                gettext(
                    "What was sent is over %(sent)s KB: a receipt file is at most "
                    "%(most)s KB."
                )
                % {"sent": BODY_MAX_BYTES // 1024, "most": RECEIPT_MAX_BYTES // 1024},
                status=413,
            )
        throttle = ReceiptVerifyThrottle()
        if not throttle.allow_request(request, self):
            wait = max(1, int(throttle.wait() or 1))
            response = self._refuse(
                request,
                ngettext(
                    "Too many checks from your address: try again in %(wait)s second.",
                    "Too many checks from your address: try again in %(wait)s seconds.",
                    wait,
                )
                % {"wait": wait},
                status=429,
            )
            response["Retry-After"] = str(wait)
            return response
        return csrf_protect(self._check)(request)

    @staticmethod
    def _refuse(request, error: str, *, status: int):
        return render(
            request,
            TEMPLATE,
            {"form": ReceiptVerifyForm(), "error": error, "refused": True},
            status=status,
        )

    def _check(self, request):
        form = ReceiptVerifyForm(request.POST, request.FILES)
        if not form.is_valid():
            return render(request, TEMPLATE, {"form": form}, status=400)
        try:
            data = json.loads(form.cleaned_data["raw"])
        except RecursionError:
            error = gettext("This is not a consent receipt (it is nested too deep).")
        except ValueError:
            error = gettext("This is not a consent receipt (it is not JSON).")
        else:
            try:
                verified = receipts_verify(data)
            except SignatureInvalid as exc:
                error = exc.message
            else:
                return render(
                    request,
                    TEMPLATE,
                    {
                        "form": ReceiptVerifyForm(),
                        "verified": receipts_readable(verified[:SHOWN]),
                        "count": len(verified),
                        "more": max(0, len(verified) - SHOWN),
                    },
                )
        return render(
            request, TEMPLATE, {"form": ReceiptVerifyForm(), "error": error}, status=400
        )
