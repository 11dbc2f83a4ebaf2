from django import forms

from apps.customers.registry import PII_FIELDS
from apps.requests.models import RequestKind, RequestStatus


class CustomerRequestForm(forms.Form):
    kind = forms.ChoiceField(choices=RequestKind.choices, label="What would you like?")
    field = forms.ChoiceField(
        choices=[("", "—"), *[(f.name, f.label) for f in PII_FIELDS]],
        required=False,
        label="For a correction: which detail",
    )
    new_value = forms.CharField(
        required=False, max_length=300, label="The correct value"
    )
    details = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Anything we should know (optional)",
    )


class StaffRequestForm(CustomerRequestForm):
    customer = forms.UUIDField(label="Customer id")
    verification = forms.CharField(
        max_length=200, label="How you verified their identity"
    )


class TransitionForm(forms.Form):
    status = forms.ChoiceField(
        choices=[(s, label) for s, label in RequestStatus.choices if s != "received"]
    )
    note = forms.CharField(required=False, max_length=500, label="Reason or note")
    extend = forms.BooleanField(
        required=False, label="Use the GDPR extension (+2 months)"
    )
