from django.shortcuts import render

from apps.crypto.errors import IntegrityFailure
from apps.crypto.keys import key_scope


class KeyScopeMiddleware:
    """Each request unwraps a customer's data key at most once, and forgets it after.

    A stored value that fails authentication becomes a clear error page (409), never
    garbage and never a 500; the failure itself was logged where it was detected.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with key_scope():
            return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, IntegrityFailure):
            return render(request, "crypto/integrity_error.html", status=409)
        return None
