from django import forms

from apps.consent.selectors import purpose_list_active
from apps.customers.registry import DataCategory


class InventoryForm(forms.Form):
    kind = forms.ChoiceField(choices=[("system", "System"), ("recipient", "Recipient")])
    name = forms.CharField(max_length=100)
    description = forms.CharField(
        max_length=300, required=False, label="Description / purpose"
    )
    country = forms.CharField(max_length=2)
    data_categories = forms.MultipleChoiceField(
        choices=DataCategory.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    retention = forms.CharField(
        max_length=200, required=False, label="Retention (systems)"
    )
    security = forms.CharField(required=False, label="Security measures (systems)")
    backup_days = forms.IntegerField(
        min_value=0, required=False, label="Backups kept (days)"
    )
    safeguards = forms.CharField(
        max_length=200, required=False, label="Transfer safeguards"
    )
    gating_purpose = forms.ModelChoiceField(
        queryset=purpose_list_active(),
        required=False,
        label="Only with consent to",
    )
    active = forms.BooleanField(required=False, initial=True)

    def service_data(self) -> tuple[str, str, dict]:
        d = self.cleaned_data
        common = {
            "country": d["country"],
            "data_categories": d["data_categories"],
            "active": d["active"],
        }
        if d["kind"] == "system":
            return (
                "system",
                d["name"],
                {
                    **common,
                    "description": d["description"],
                    "retention": d["retention"] or "",
                    "security": d["security"] or "",
                    "backup_days": d["backup_days"] or 0,
                },
            )
        return (
            "recipient",
            d["name"],
            {
                **common,
                "purpose": d["description"],
                "safeguards": d["safeguards"] or "",
                "gating_purpose": d["gating_purpose"],
            },
        )
