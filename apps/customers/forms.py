from django import forms

# The exact-search fields: personal data, so a form that takes them is sent by POST
# (a URL is written by access logs, proxies and browser history).
SEARCH_FIELDS = frozenset({"email", "phone"})


class CustomerSearchForm(forms.Form):
    """Exact email and/or phone, for the staff desk and the admin's search (POST)."""

    email = forms.CharField(required=False, max_length=254, label="Exact email")
    phone = forms.CharField(required=False, max_length=32, label="Exact phone")

    def clean(self):
        data = super().clean()
        if self.is_bound and not (data.get("email") or data.get("phone")):
            raise forms.ValidationError("Enter an email address or a phone number.")
        return data
