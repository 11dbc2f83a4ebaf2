from apps.crypto.keys import key_scope


class KeyScopeMiddleware:
    """Each request unwraps a customer's data key at most once, and forgets it after."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with key_scope():
            return self.get_response(request)
