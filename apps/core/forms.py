"""Domain errors shown on Django forms."""

from django import forms
from django.http import QueryDict

from apps.core.errors import DomainError

# Codes of errors that refuse what a field holds (a customer's personal data in a
# reason): the page shown again must not hold it either.
CONTENT_REFUSED = frozenset({"personal_data", "card_number"})


def form_add_domain_error(form: forms.Form, exc: DomainError) -> None:
    """Show a service's refusal on the form: on its field when the form has one. A
    refusal of what the field holds also empties it, so the page does not repeat the
    value it refused."""
    field = exc.field if exc.field in form.fields else None
    form.add_error(field, exc.message)
    name = form.add_prefix(field) if field is not None else None
    if name is not None and exc.code in CONTENT_REFUSED and name in form.data:
        # A bound form's data is the request's immutable QueryDict, or a dict.
        data = form.data.copy() if isinstance(form.data, QueryDict) else dict(form.data)
        data[name] = ""
        form.data = data
