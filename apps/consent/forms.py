from django import forms

# A customer's whole bundle of receipts fits many times over.
RECEIPT_MAX_BYTES = 512 * 1024


class ReceiptVerifyForm(forms.Form):
    receipt = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}),
        label="Paste a receipt",
        help_text="One receipt, or the whole file you downloaded.",
    )
    file = forms.FileField(required=False, label="Or upload the file")

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            if upload.size > RECEIPT_MAX_BYTES:
                raise forms.ValidationError(
                    f"The file is over {RECEIPT_MAX_BYTES // 1024} KB: not a receipt "
                    "file."
                )
            raw = upload.read(RECEIPT_MAX_BYTES + 1)
        else:
            raw = (data.get("receipt") or "").encode()
        if not raw.strip():
            raise forms.ValidationError("Paste a receipt or upload the file.")
        if len(raw) > RECEIPT_MAX_BYTES:
            raise forms.ValidationError(
                f"That is over {RECEIPT_MAX_BYTES // 1024} KB: not a receipt file."
            )
        data["raw"] = raw
        return data
