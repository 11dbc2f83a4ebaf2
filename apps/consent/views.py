import json

from django.shortcuts import render
from django.views import View

from apps.consent.forms import ReceiptVerifyForm
from apps.consent.receipts import receipts_verify
from apps.crypto.errors import SignatureInvalid

TEMPLATE = "consent/receipt_verify.html"
# Sentences the page lists; a bigger bundle is counted, not listed.
SHOWN = 50


class ReceiptVerifyView(View):
    """Anyone (no sign-in) checks a consent receipt against the published key."""

    def get(self, request):
        return render(request, TEMPLATE, {"form": ReceiptVerifyForm()})

    def post(self, request):
        form = ReceiptVerifyForm(request.POST, request.FILES)
        if not form.is_valid():
            return render(request, TEMPLATE, {"form": form}, status=400)
        try:
            data = json.loads(form.cleaned_data["raw"])
        except ValueError:
            error = "This is not a consent receipt (it is not JSON)."
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
                        "verified": verified[:SHOWN],
                        "count": len(verified),
                        "more": max(0, len(verified) - SHOWN),
                    },
                )
        return render(
            request, TEMPLATE, {"form": ReceiptVerifyForm(), "error": error}, status=400
        )
