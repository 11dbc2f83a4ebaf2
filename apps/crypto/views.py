from django.http import JsonResponse
from django.views import View

from apps.crypto.signing import jwks


class SigningKeysView(View):
    """The public keys that verify receipts and checkpoints, as a JWKS: public, and
    cacheable for an hour."""

    def get(self, request):
        response = JsonResponse(jwks())
        response["Cache-Control"] = "public, max-age=3600"
        response["Access-Control-Allow-Origin"] = "*"
        return response
