from django import forms
from django.utils.translation import gettext_lazy as _

from apps.customers.registry import PII_FIELDS
from apps.requests.models import ObjectionTo, RequestKind, RequestStatus


class CustomerRequestForm(forms.Form):
    kind = forms.ChoiceField(
        choices=RequestKind.choices, label=_("What would you like?")
    )
    field = forms.ChoiceField(
        choices=[("", "—"), *[(f.name, f.label) for f in PII_FIELDS]],
        required=False,
        label=_("For a correction: which detail"),
    )
    new_value = forms.CharField(
        required=False, max_length=300, label=_("The correct value")
    )
    objection_to = forms.ChoiceField(
        choices=[("", "—"), *ObjectionTo.choices],
        required=False,
        label=_("For an objection: what you object to"),
    )
    details = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=_("Anything we should know (optional)"),
    )

    def clean(self):
        data = super().clean()
        if data.get("kind") == RequestKind.OBJECTION and not data.get("objection_to"):
            self.add_error(
                "objection_to",
                _(
                    "Say what you object to: direct marketing, or another use of "
                    "your data."
                ),
            )
        return data


class StaffRequestForm(CustomerRequestForm):
    customer = forms.UUIDField(label="Customer id")
    verification = forms.CharField(
        max_length=200, label="How you verified their identity"
    )


class TransitionForm(forms.Form):
    """The request page's form: a status change, the extension (offered only while
    the request's rule allows one and it is unused: `extension`), or both."""

    status = forms.ChoiceField(
        choices=[("", "Keep the status")]
        + [(s, label) for s, label in RequestStatus.choices if s != "received"],
        required=False,
    )
    note = forms.CharField(required=False, max_length=500, label="Reason or note")
    extend = forms.BooleanField(required=False)

    def __init__(self, *args, extension: str = "", **kwargs):
        super().__init__(*args, **kwargs)
        if extension:
            self.fields[
                "extend"
            ].label = f"Use the extension the law allows ({extension})"
        else:
            del self.fields["extend"]
