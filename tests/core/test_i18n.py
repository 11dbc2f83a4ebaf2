"""Which one language a text written per language is given in."""

import pytest
from django.core.exceptions import ValidationError

from apps.core.i18n import (
    language_choose,
    language_codes,
    language_is_known,
    language_is_rtl,
    language_of_country,
    language_others,
    texts_in_language,
    translations_check,
)

FIELDS = ("name", "body")


def test_the_customers_language_when_it_exists():
    assert language_choose(available=["en", "id"], wanted=["id", "de"]) == "id"


def test_the_next_preference_then_english_then_the_first_written():
    assert (
        language_choose(available=["en", "de"], wanted=["fa", None, "", "de"]) == "de"
    )
    assert language_choose(available=["en", "de"], wanted=["fa"]) == "en"
    assert language_choose(available=["fa", "de"], wanted=["id"]) == "de"


def test_nothing_written_is_an_error():
    with pytest.raises(ValueError, match="No language"):
        language_choose(available=[], wanted=["en"])


def test_the_four_languages_persian_right_to_left():
    assert language_codes() == ["en", "id", "de", "fa"]
    assert language_is_rtl("fa")
    assert not language_is_rtl("de")


def test_the_languages_staff_write_versions_in_are_all_but_english():
    assert language_others() == [
        ("id", "Indonesian"),
        ("de", "German"),
        ("fa", "Persian"),
    ]
    assert language_is_known("en")
    assert not language_is_known("en", source=False)
    assert language_is_known("fa", source=False)
    assert not language_is_known("xx")
    assert not language_is_known("")


def test_a_countrys_language_else_english():
    assert language_of_country("ID") == "id"
    assert language_of_country("de") == "de"
    assert language_of_country("IR") == "fa"
    assert language_of_country("FR") == "en"
    assert language_of_country("") == "en"


def test_translations_are_each_language_whole_or_absent():
    translations_check({"id": {"name": "Survei", "body": "Isi"}}, fields=FIELDS)
    for bad in (
        [],  # not keyed by language
        {"en": {"name": "Surveys", "body": "Text"}},  # the source is the fields
        {"xx": {"name": "a", "body": "b"}},
        {"id": {"name": "Survei"}},  # half a language
        {"id": {"name": "Survei", "body": "  "}},
    ):
        with pytest.raises(ValidationError) as refused:
            translations_check(bad, fields=FIELDS)
        assert "translations" in refused.value.message_dict


def test_texts_in_one_whole_language_else_english():
    source = {"name": "Surveys", "body": "Text"}
    translations = {"id": {"name": "Survei", "body": "Isi"}}
    assert texts_in_language(
        source=source, translations=translations, language="id"
    ) == ({"name": "Survei", "body": "Isi"}, "id")
    assert texts_in_language(
        source=source, translations=translations, language="de"
    ) == (source, "en")
    assert texts_in_language(source=source, translations={}, language=None) == (
        source,
        "en",
    )


def test_django_s_password_messages_read_in_persian_too():
    # Django's Persian catalog lacks this msgid (apps.core.i18n.DJANGO_TEXTS_MISSING).
    from django.contrib.auth.password_validation import MinimumLengthValidator
    from django.core.exceptions import ValidationError
    from django.utils import translation

    for language in ("id", "de", "fa"):
        with translation.override(language), pytest.raises(ValidationError) as error:
            MinimumLengthValidator(12).validate("short")
        assert "This password" not in error.value.messages[0], language
