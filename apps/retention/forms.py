from django import forms
from django.utils import timezone

from apps.consent.forms import translations_fields_form
from apps.core.reasons import REASON_MIN_LENGTH
from apps.customers.registry import DataCategory
from apps.retention.models import POLICY_TEXT_FIELDS, Action, Covers, Trigger


class PolicyForm(translations_fields_form(POLICY_TEXT_FIELDS)):  # type: ignore[misc]
    """A policy; its description and legal basis also per language (after the
    English source), each language whole."""

    field_order = [
        "covers",
        "category",
        "period_days",
        "trigger",
        "action",
        "legal_basis",
        "description",
        "enabled",
    ]
    covers = forms.ChoiceField(choices=Covers.choices)
    category = forms.ChoiceField(
        choices=[("", "—"), *list(DataCategory.choices)],
        required=False,
        help_text="Only for customer personal data of one category.",
    )
    period_days = forms.IntegerField(
        min_value=1, max_value=36500, label="Period (days)"
    )
    trigger = forms.ChoiceField(choices=Trigger.choices, label="Counted from")
    action = forms.ChoiceField(choices=Action.choices)
    legal_basis = forms.CharField(max_length=300)
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Plain language: shown on the public data policy page.",
    )
    enabled = forms.BooleanField(required=False)


class HoldForm(forms.Form):
    customer = forms.UUIDField(required=False, label="Customer id")
    covers = forms.ChoiceField(
        choices=[("", "—"), *list(Covers.choices)],
        required=False,
        label="Or a whole kind",
    )
    reason = forms.CharField(max_length=300, min_length=REASON_MIN_LENGTH)
    ends_at = forms.DateTimeField(
        required=False,
        label="Ends (optional)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The time typed is read in the server's zone (TIME_ZONE): name it.
        zone = timezone.get_current_timezone_name()
        self.fields["ends_at"].label = f"Ends (optional, {zone})"
