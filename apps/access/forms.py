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

    def __init__(
        self,
        *args,
        choices: list[tuple[str, str]],
        restricted_to: list[str] | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.fields["fields"] = forms.MultipleChoiceField(
            choices=choices, widget=forms.CheckboxSelectMultiple
        )
        if restricted_to:
            # A restricted customer (GDPR art. 18): the reveal is for the
            # restriction's purpose, which the reason then names.
            self.fields["restriction_purpose"] = forms.ChoiceField(
                choices=[(p, p) for p in restricted_to],
                required=False,
                widget=forms.RadioSelect,
                label="This is for the restricted use",
            )
        self.order_fields(["fields", "restriction_purpose", "reason"])

    def reason_stated(self) -> str:
        """The reason as the service takes it: with the restricted use it is for
        first, when one was chosen."""
        reason = self.cleaned_data["reason"]
        purpose = self.cleaned_data.get("restriction_purpose")
        return f"{purpose}: {reason}" if purpose else reason
