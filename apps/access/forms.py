from django import forms

from apps.access.services import REASON_MIN


class CustomerSearchForm(forms.Form):
    email = forms.CharField(required=False, max_length=254, label="Exact email")
    phone = forms.CharField(required=False, max_length=32, label="Exact phone")

    def clean(self):
        data = super().clean()
        if self.is_bound and not (data.get("email") or data.get("phone")):
            raise forms.ValidationError("Enter an email address or a phone number.")
        return data


class RevealForm(forms.Form):
    fields = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)
    reason = forms.CharField(
        min_length=REASON_MIN,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why you need the full values now (recorded, shown to compliance).",
    )

    def __init__(self, *args, choices: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["fields"].choices = choices
