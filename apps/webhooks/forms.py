from django import forms

from apps.webhooks.models import EventType


class EndpointForm(forms.Form):
    url = forms.CharField(max_length=500, label="URL (https://)")
    events = forms.MultipleChoiceField(
        choices=EventType.choices, widget=forms.CheckboxSelectMultiple
    )
    description = forms.CharField(max_length=200, required=False)
