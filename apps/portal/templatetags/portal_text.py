"""Small helpers for the customer's pages: `{% load portal_text %}`."""

from django import template

from apps.consent.selectors import PurposeText

register = template.Library()


@register.filter
def in_sentence(text: PurposeText) -> str:
    """A purpose's name inside a sentence: an English name in lower case ("stop
    receiving marketing emails"), any other as written (German nouns keep
    their capitals)."""
    return name_in_sentence(text)


def name_in_sentence(text: PurposeText) -> str:
    return text.name.lower() if text.language == "en" else text.name
