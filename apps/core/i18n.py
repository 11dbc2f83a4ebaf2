"""The languages customers read Amanah in, and which one a text is given in.

Pages, emails and notices Amanah writes itself are translated with gettext (`locale/`).
Texts staff write (incident notices, status updates, notice summaries, purposes) are
written per language; a customer gets one whole language of them: theirs, else the
first of their other preferences that exists, else English, else the first written.
Never a mix: `language_choose` picks one language for the whole text.

Which language a customer is written to in is one rule, `customer_language` in
apps/customers/selectors.py (saved, else the one they asked in, else their country's
by COUNTRY_LANGUAGES, else English). Staff-written texts are kept as the English source
in their fields plus `translations` ({language: {field: text}}, `translations_check`)
and read with `texts_in_language`.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import ngettext_lazy


def language_codes() -> list[str]:
    """The codes of settings.LANGUAGES, English (the source) first."""
    return [code for code, _name in settings.LANGUAGES]


def language_is_rtl(code: str) -> bool:
    return code in settings.LANGUAGES_BIDI


def language_choose(*, available: Iterable[str], wanted: Iterable[str | None]) -> str:
    """The one language to give a text in: the first of `wanted` (most preferred
    first; blanks skipped) that `available` has, else the source language
    (settings.LANGUAGE_CODE) if available, else the first available in the order of
    settings.LANGUAGES. Raises ValueError when nothing is available."""
    have = set(available)
    if not have:
        raise ValueError("No language is available.")
    for code in wanted:
        if code and code in have:
            return code
    if settings.LANGUAGE_CODE in have:
        return settings.LANGUAGE_CODE
    ordered = [code for code in language_codes() if code in have]
    return ordered[0] if ordered else sorted(have)[0]


def language_others() -> list[tuple[str, str]]:
    """(code, English name) of each language but the source: the ones staff write
    versions of their texts in (staff pages are English)."""
    return [
        (code, translation.get_language_info(code)["name"])
        for code in language_codes()
        if code != settings.LANGUAGE_CODE
    ]


def language_is_known(code: str, *, source: bool = True) -> bool:
    """Whether `code` is a language Amanah offers (of settings.LANGUAGES); with
    `source=False`, one other than the source (English): a language staff write a
    version in."""
    if not source and code == settings.LANGUAGE_CODE:
        return False
    return code in language_codes()


# The language a customer who saved none and asked in none reads, by country (ISO
# 3166-1 alpha-2); any other country reads the source language.
COUNTRY_LANGUAGES = {"ID": "id", "DE": "de", "IR": "fa"}


def language_of_country(country: str) -> str:
    """The language of a customer's country, else the source language (English)."""
    return COUNTRY_LANGUAGES.get((country or "").upper(), settings.LANGUAGE_CODE)


def translations_check(value: object, *, fields: tuple[str, ...]) -> None:
    """Staff-written translations are {language: {field: text}}: languages of
    settings.LANGUAGES other than the English source, each with exactly these fields,
    every one written, so that a language is whole or absent, never half.
    Raises ValidationError on the `translations` field."""
    known = [code for code, _name in language_others()]
    if not isinstance(value, dict):
        raise ValidationError({"translations": "Give an object keyed by language."})
    for code, texts in value.items():
        if not language_is_known(code, source=False):
            raise ValidationError(
                {
                    "translations": f"Unknown language {code!r}: use one of "
                    f"{', '.join(known)}."
                }
            )
        if not isinstance(texts, dict) or set(texts) != set(fields):
            raise ValidationError(
                {"translations": f"Give {code!r} exactly: {', '.join(fields)}."}
            )
        for field in fields:
            text = texts[field]
            if not isinstance(text, str) or not text.strip():
                raise ValidationError(
                    {
                        "translations": f"Write the {field} in {code!r}, or leave the "
                        "language out."
                    }
                )


def texts_in_language(
    *, source: Mapping[str, str], translations: Mapping[str, Any], language: str | None
) -> tuple[dict[str, str], str]:
    """Staff-written texts (`source`: the English, `translations`: the others, each
    whole, as `translations_check` keeps them) in one language: `language` if
    written, else English. Returns the texts and their language."""
    translations = translations or {}
    chosen = language_choose(
        available={settings.LANGUAGE_CODE, *translations}, wanted=[language]
    )
    if chosen == settings.LANGUAGE_CODE:
        return dict(source), chosen
    return {field: translations[chosen][field] for field in source}, chosen


# Django's own messages a customer sees that its Persian catalog lacks (the password
# validator's msgid changed in Django 5): named here, so that makemessages puts them
# in our catalogs (locale/), whose translations Django reads first.
DJANGO_TEXTS_MISSING = (
    ngettext_lazy(
        "This password is too short. It must contain at least %d character.",
        "This password is too short. It must contain at least %d characters.",
        "count",
    ),
)
