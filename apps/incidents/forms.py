from django import forms
from django.utils import timezone

from apps.core.i18n import language_others
from apps.customers.registry import DataCategory
from apps.incidents.models import (
    DATA_AT_RISK_CHOICES,
    ComponentState,
    Incident,
    IncidentStatus,
    IncidentText,
    UpdatePhase,
)

DATETIME = forms.DateTimeInput(
    attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
)


class IncidentForm(forms.ModelForm):
    data_categories = forms.MultipleChoiceField(
        choices=DataCategory.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Data involved",
    )
    systems_text = forms.CharField(
        required=False, label="Systems involved (comma-separated)", max_length=500
    )

    class Meta:
        model = Incident
        fields = [
            "title",
            "kind",
            "severity",
            "occurred_at",
            "detected_at",
            "aware_at",
            "assessed_at",
            "data_categories",
            "risk_level",
            "encrypted_keys_safe",
            "risk_reasoning",
            "what_happened",
            "what_we_are_doing",
            "what_you_can_do",
            "contact",
            "remedy_kind",
            "remedy_description",
        ]
        widgets = {
            "occurred_at": DATETIME,
            "detected_at": DATETIME,
            "aware_at": DATETIME,
            "assessed_at": DATETIME,
            "risk_reasoning": forms.Textarea(attrs={"rows": 3}),
            "what_happened": forms.Textarea(attrs={"rows": 3}),
            "what_we_are_doing": forms.Textarea(attrs={"rows": 3}),
            "what_you_can_do": forms.Textarea(attrs={"rows": 3}),
        }
        labels = {
            "what_happened": "What happened (English)",
            "what_we_are_doing": "What we are doing (English)",
            "what_you_can_do": "What you can do (English)",
            "contact": "Whom to contact (English)",
            "remedy_description": "Remedy description (English)",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Times typed are read in the server's zone (TIME_ZONE): name it.
        zone = timezone.get_current_timezone_name()
        label = f"Became aware ({zone}): the legal clocks start here"
        self.fields["aware_at"].label = label
        if self.instance and self.instance.pk:
            self.fields["systems_text"].initial = ", ".join(self.instance.systems)

    def service_data(self) -> dict:
        data = {k: v for k, v in self.cleaned_data.items() if k != "systems_text"}
        data["systems"] = [
            s.strip()
            for s in self.cleaned_data.get("systems_text", "").split(",")
            if s.strip()
        ]
        return data


class TransitionForm(forms.Form):
    status = forms.ChoiceField(choices=IncidentStatus.choices)
    note = forms.CharField(required=False, max_length=500)


class TimelineForm(forms.Form):
    text = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), label="Action taken"
    )


class AffectedForm(forms.Form):
    scope = forms.ChoiceField(
        choices=[
            ("all", "All customers"),
            ("countries", "Customers in these countries or regions"),
            ("window", "Customers created in a window"),
            ("list", "A list of customer ids"),
        ],
        widget=forms.RadioSelect,
    )
    countries = forms.CharField(required=False, help_text="ISO codes: ID, US, DE")
    regions = forms.CharField(required=False, help_text="ISO 3166-2: US-CA, ID-JK")
    created_from = forms.DateTimeField(required=False, widget=DATETIME)
    created_to = forms.DateTimeField(required=False, widget=DATETIME)
    customer_ids = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 3}), label="Customer ids"
    )
    ids_file = forms.FileField(required=False, label="Or upload a file of ids")
    mailbox_compromised = forms.BooleanField(
        required=False, label="Their mailbox credentials were taken (do not email them)"
    )

    @staticmethod
    def codes(text: str) -> list[str]:
        return [
            c.strip().upper() for c in text.replace(";", ",").split(",") if c.strip()
        ]


class IncidentTextForm(forms.ModelForm):
    """What customers are told, in one more language (staff page: English labels).
    Adding one names the language; changing one keeps it (`language` disabled)."""

    class Meta:
        model = IncidentText
        fields = [
            "language",
            "what_happened",
            "what_we_are_doing",
            "what_you_can_do",
            "contact",
            "remedy_description",
        ]
        widgets = {
            "what_happened": forms.Textarea(attrs={"rows": 3}),
            "what_we_are_doing": forms.Textarea(attrs={"rows": 3}),
            "what_you_can_do": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["language"].choices = [
            ("", "Choose a language"),
            *language_others(),
        ]
        if self.instance.pk:
            self.fields["language"].disabled = True

    def validate_unique(self):
        """The service says it (`duplicate`), under the incident's row lock."""


class StatusUpdateForm(forms.Form):
    phase = forms.ChoiceField(choices=UpdatePhase.choices)
    message = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), label="Message (English)"
    )
    # No default: publishing "not at risk" must be a choice, never the form's.
    data_at_risk = forms.ChoiceField(
        choices=[
            ("", "Choose what to tell people about their data"),
            *DATA_AT_RISK_CHOICES,
        ],
        label="Is people's data at risk?",
    )
    component_state = forms.ChoiceField(choices=ComponentState.choices, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The update in more languages: a title and a message each, or neither.
        for code, name in language_others():
            self.fields[f"title_{code}"] = forms.CharField(
                required=False, max_length=200, label=f"Title ({name})"
            )
            self.fields[f"message_{code}"] = forms.CharField(
                required=False,
                widget=forms.Textarea(attrs={"rows": 2}),
                label=f"Message ({name})",
            )

    def texts(self) -> dict[str, dict[str, str]]:
        """{language: {"title", "message"}} for each language given (in part)."""
        data = self.cleaned_data
        texts = {}
        for code, _name in language_others():
            title = data.get(f"title_{code}", "").strip()
            message = data.get(f"message_{code}", "").strip()
            if title or message:
                texts[code] = {"title": title, "message": message}
        return texts


class NotifiedForm(forms.Form):
    """That the body a deadline names was told (one per deadline)."""

    rule = forms.CharField(max_length=50, widget=forms.HiddenInput)
    audience = forms.CharField(max_length=20, widget=forms.HiddenInput)
    recipient = forms.CharField(
        max_length=200,
        label="Whom",
        help_text="The authority or body (for people: how they were told).",
    )
    notified_at = forms.DateTimeField(widget=DATETIME, label="When")
    reference = forms.CharField(
        max_length=200, required=False, label="Their reference or ours"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        zone = timezone.get_current_timezone_name()
        self.fields["notified_at"].label = f"When ({zone})"


class ReportSendForm(forms.Form):
    recipient = forms.CharField(max_length=200, label="Sent to (the authority)")
    notified_at = forms.DateTimeField(widget=DATETIME, label="Sent at")
    reference = forms.CharField(
        max_length=200, required=False, label="The authority's reference"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        zone = timezone.get_current_timezone_name()
        self.fields["notified_at"].label = f"Sent at ({zone})"


class ReportForm(forms.Form):
    """One text area per heading of the report's form."""

    def __init__(self, *args, sections: list[tuple[str, str, str]], **kwargs):
        super().__init__(*args, **kwargs)
        for key, title, text in sections:
            self.fields[key] = forms.CharField(
                label=title,
                initial=text,
                required=False,
                widget=forms.Textarea(attrs={"rows": 6}),
            )
