"""Staff-written consent texts in the language the page is in (or one whole other
language where it is missing): `{% load consent_text %}`, then
`{% with text=purpose|purpose_text %}<h2 lang="{{ text.language }}">{{ text.name }}`."""

from django import template
from django.utils import translation

from apps.consent.models import PrivacyNotice, Purpose
from apps.consent.selectors import (
    NoticeText,
    PurposeText,
    notice_text,
)
from apps.consent.selectors import (
    purpose_text as purpose_text_in,
)

register = template.Library()


@register.filter
def purpose_text(purpose: Purpose) -> PurposeText:
    return purpose_text_in(purpose, translation.get_language())


@register.filter
def purpose_name(purpose: Purpose) -> str:
    return purpose_text(purpose).name


@register.filter(name="notice_text")
def notice_text_filter(notice: PrivacyNotice) -> NoticeText:
    return notice_text(notice, translation.get_language())
