"""Which one language a text written per language is given in."""

import pytest

from apps.core.i18n import language_choose, language_codes, language_is_rtl


def test_the_customers_language_when_it_exists():
    assert language_choose(available=["en", "id"], wanted=["id", "de"]) == "id"


def test_the_next_preference_then_english_then_the_first_written():
    assert language_choose(available=["en", "de"], wanted=["fa", None, "", "de"]) == "de"
    assert language_choose(available=["en", "de"], wanted=["fa"]) == "en"
    assert language_choose(available=["fa", "de"], wanted=["id"]) == "de"


def test_nothing_written_is_an_error():
    with pytest.raises(ValueError):
        language_choose(available=[], wanted=["en"])


def test_the_four_languages_persian_right_to_left():
    assert language_codes() == ["en", "id", "de", "fa"]
    assert language_is_rtl("fa")
    assert not language_is_rtl("de")
