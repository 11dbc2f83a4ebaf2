from django import forms


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="UTF-8, a header row; columns named as the customer API's fields, "
        "plus consent:<purpose> and consent_at:<purpose>.",
    )
    dry_run = forms.BooleanField(
        label="Dry run: validate and count, write nothing", required=False
    )
