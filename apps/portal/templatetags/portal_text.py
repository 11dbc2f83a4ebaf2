"""Small helpers for the customer's pages: `{% load portal_text %}`."""

from django import template
from django.conf import settings
from django.utils import translation
from django.utils.html import format_html

from apps.consent.selectors import PurposeText
from apps.requests.models import DataRequest
from apps.requests.selectors import certificate_backups_text, request_outcome_text

register = template.Library()


@register.filter
def in_sentence(text: PurposeText | str) -> str:
    """A purpose's name (or a label in the active language) inside a sentence: an
    English one in lower case ("stop receiving marketing emails"), any other as
    written (German nouns keep their capitals)."""
    if isinstance(text, PurposeText):
        return name_in_sentence(text)
    text = str(text)
    return text.lower() if translation.get_language() == "en" else text


def name_in_sentence(text: PurposeText) -> str:
    return text.name.lower() if text.language == "en" else text.name


@register.filter
def outcome_text(request: DataRequest) -> str:
    """A request's outcome in the active language (its values in it too)."""
    return request_outcome_text(request)


@register.filter
def certificate_backups(certificate: dict) -> str:
    """What an erasure certificate says about backups, in the active language."""
    return certificate_backups_text(certificate)


@register.filter
def in_english(text: str) -> str:
    """A text staff write in English only, inside a page in another language: marked
    as English (`lang`), so it is read out and hyphenated as such."""
    if not text or translation.get_language() == settings.LANGUAGE_CODE:
        return text
    return format_html('<span lang="{}">{}</span>', settings.LANGUAGE_CODE, text)
