from django import forms
from django.contrib.auth.forms import AuthenticationForm

_WRONG = "The username or password is not right. Both are case-sensitive."


class StaffLoginForm(AuthenticationForm):
    """Django's sign-in form; its error never says whether the username exists."""

    error_messages = {
        "invalid_login": _WRONG,
        "inactive": _WRONG,
    }


class OtpTokenForm(forms.Form):
    otp_token = forms.CharField(
        label="Code",
        max_length=16,
        strip=True,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}
        ),
        help_text="The 6-digit code from your authenticator app, or a recovery code.",
    )
