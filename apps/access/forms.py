from django import forms

from apps.access.services import REASON_MIN


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
