"""The languages customers read Amanah in, and which one a text is given in.

Pages, emails and notices Amanah writes itself are translated with gettext (`locale/`).
Texts staff write (incident notices, status updates, notice summaries, purposes) are
written per language; a customer gets one whole language of them: theirs, else the
first of their other preferences that exists, else English, else the first written.
Never a mix: `language_choose` picks one language for the whole text.
"""

from collections.abc import Iterable

from django.conf import settings


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
