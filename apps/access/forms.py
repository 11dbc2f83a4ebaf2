from django import forms

from apps.core.reasons import REASON_MIN_LENGTH


class RevealForm(forms.Form):
    # The checkboxes post as "fields": __init__ adds that field, since a class
    # attribute of that name would stand, for type checkers, where Form.fields does.
    reason = forms.CharField(
        min_length=REASON_MIN_LENGTH,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why you need the full values now (recorded, shown to compliance).",
    )

    def __init__(self, *args, choices: list[tuple[str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["fields"] = forms.MultipleChoiceField(
            choices=choices, widget=forms.CheckboxSelectMultiple
        )
        self.order_fields(["fields", "reason"])
