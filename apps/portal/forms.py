from django import forms
from django.contrib.auth import authenticate
from django.contrib.auth.forms import PasswordResetForm
from django.contrib.auth.tokens import default_token_generator
from django.core.mail import send_mail
from django.utils import translation
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from apps.core.links import public_url
from apps.customers.selectors import customer_find_by_email, customer_language

WRONG = gettext_lazy("The email address or password is not right.")


class CustomerLoginForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("Email address"), max_length=254)
    password = forms.CharField(
        label=gettext_lazy("Password"), widget=forms.PasswordInput, strip=False
    )

    def __init__(self, request=None, *args, **kwargs):
        self.request = request
        self.user = None
        super().__init__(*args, **kwargs)
        self.fields["email"].widget.attrs.update(autocomplete="email", autofocus=True)
        self.fields["password"].widget.attrs.update(autocomplete="current-password")

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        self.user = authenticate(
            self.request, email=data["email"], password=data["password"]
        )
        if self.user is None:
            raise forms.ValidationError(WRONG, code="invalid_login")
        return data


class CustomerPasswordResetForm(PasswordResetForm):
    """Django's reset form, finding the customer through the blind index and writing
    to the address on their encrypted record. The link is on AMANAH_PUBLIC_URL, never
    on the Host header the request came with (which the client chooses)."""

    def save(self, request=None, **kwargs):
        customer = customer_find_by_email(email=self.cleaned_data["email"])
        if customer is None or customer.user is None or not customer.user.is_active:
            return  # same page either way: nothing says whether the address is known
        user = customer.user
        link = public_url(
            "portal:password-reset-confirm",
            kwargs={
                "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                "token": default_token_generator.make_token(user),
            },
        )
        # In the customer's language: saved, else the page's (they just used it).
        language = customer_language(customer, requested=translation.get_language())
        with translation.override(language):
            subject = _("Reset your Amanah password")
            message = _(
                "Someone asked to reset the password of your account.\n\n"
                "Choose a new one here (the link works once): %(link)s\n\n"
                "If it was not you, ignore this message."
            ) % {"link": link}
        send_mail(
            subject=subject,
            message=message,
            from_email=None,
            recipient_list=[customer.email],
        )
