from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy

from apps.accounts.scopes import Scope
from apps.accounts.services import NAMED_TOKEN_DAYS_DEFAULT, NAMED_TOKEN_DAYS_MAX

_WRONG = "The username or password is not right. Both are case-sensitive."


class StaffLoginForm(AuthenticationForm):
    """Django's sign-in form; its error never says whether the username exists."""

    error_messages = {
        "invalid_login": _WRONG,
        "inactive": _WRONG,
    }


class OtpTokenForm(forms.Form):
    otp_token = forms.CharField(
        label=gettext_lazy("Code"),
        max_length=16,
        strip=True,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}
        ),
        help_text=gettext_lazy(
            "The 6-digit code from your authenticator app, or a recovery code."
        ),
    )


class ApiTokenForm(forms.Form):
    """A named API token for an integration (services.api_token_create checks it)."""

    name = forms.CharField(
        label="Name",
        max_length=100,
        strip=True,
        help_text="What uses it, e.g. “CRM sync”. Unique among your tokens.",
    )
    scopes = forms.MultipleChoiceField(
        label="What it may do",
        choices=Scope.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text="Never more than your role may do.",
    )
    expires_in_days = forms.IntegerField(
        label="Expires after (days)",
        min_value=1,
        max_value=NAMED_TOKEN_DAYS_MAX,
        initial=NAMED_TOKEN_DAYS_DEFAULT,
    )
