from django.contrib.auth.forms import AuthenticationForm

_WRONG = "The username or password is not right. Both are case-sensitive."


class StaffLoginForm(AuthenticationForm):
    """Django's sign-in form; its error never says whether the username exists."""

    error_messages = {
        "invalid_login": _WRONG,
        "inactive": _WRONG,
    }
