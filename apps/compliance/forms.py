from django import forms

from apps.compliance.models import ActivityBasis
from apps.consent.selectors import purpose_list_active
from apps.customers.registry import DataCategory
from apps.inventory.selectors import recipient_list, system_list
from apps.retention.selectors import policy_list


class ActivityForm(forms.Form):
    """A processing activity, as privacy admins change it (apps.compliance.services)."""

    name = forms.CharField(max_length=120)
    purpose = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))
    legal_basis = forms.ChoiceField(choices=ActivityBasis.choices)
    data_subjects = forms.CharField(max_length=200)
    data_categories = forms.MultipleChoiceField(
        choices=DataCategory.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    consent_purpose = forms.ModelChoiceField(
        queryset=purpose_list_active(), required=False, to_field_name="code"
    )
    systems = forms.ModelMultipleChoiceField(
        queryset=system_list(active_only=False),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    recipients = forms.ModelMultipleChoiceField(
        queryset=recipient_list(active_only=False),
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    retention_policies = forms.ModelMultipleChoiceField(
        queryset=policy_list(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        to_field_name="code",
    )
    owner = forms.CharField(
        max_length=100, help_text="A role or person in the business, never a customer."
    )

    def service_data(self) -> dict:
        data = dict(self.cleaned_data)
        for name in ("systems", "recipients", "retention_policies"):
            data[name] = list(data[name])
        return data
