"""The import's fast validation path answers exactly as the API's serializer does: on
a corpus of good and bad values for every field, in full and partial mode, the
import's `_Validator` gives the serializer's validated data or its very errors (field,
code, message), and whatever the fast path accepts, the serializer accepts with the
same values."""

import pytest
from rest_framework.exceptions import ValidationError

from apps.access.api import CustomerInputSerializer
from apps.imports.services import _serializer_errors, _Validator

LONG = {"country": 2, "region": 6, "full_name": 200, "phone": 32}
TEXT_VALUES = [
    "",
    "   ",
    "Siti Rahma",
    "  padded  ",
    "\tTabbed\n",
    "é ünïcödé",
    "a\x00b",
    "bad \ud800 surrogate",
    "x" * 20,
    "x" * 21,
    "x" * 200,
    "x" * 201,
    " " + "x" * 200 + " ",
    "x" * 5000,
    "x" * 5001,
    "0812 3456 7890",
    "4111 1111 1111 1111",
    None,
    12,
]
EMAIL_VALUES = [
    "ok@example.com",
    " Mixed.Case@Example.COM ",
    "not-an-email",
    "a@localhost",
    "a@[127.0.0.1]",
    "a@b",
    "ünï@exämple.com",
    "two@@example.com",
    "x" * 245 + "@example.com",
    "x" * 240 + "@example.com",
    "",
    None,
]
DATE_VALUES = [
    "1990-02-28",
    "2000-02-29",
    "1990-02-31",
    "31/02/1990",
    "19900228",
    "1990-2-3",
    "2024-W01-1",
    "١٩٩٠-٠٢-٢٨",
    " 1990-02-28 ",
    "",
    None,
]
COUNTRY_VALUES = ["ID", "id", "IDN", "", " ", None]


def _corpus():
    fields = CustomerInputSerializer().fields
    for name in fields:
        if name == "email":
            values = EMAIL_VALUES
        elif name == "date_of_birth":
            values = DATE_VALUES
        elif name == "country":
            values = COUNTRY_VALUES + TEXT_VALUES
        else:
            values = TEXT_VALUES
        for value in values:
            yield name, value


CORPUS = list(_corpus())


def _serializer(fields: dict, *, partial: bool):
    serializer = CustomerInputSerializer(partial=partial)
    try:
        return dict(serializer.run_validation(fields)), []
    except ValidationError as exc:
        return {}, _serializer_errors(exc.detail)


def test_every_field_has_bad_values_in_the_corpus():
    names = set(CustomerInputSerializer().fields)
    assert {name for name, _ in CORPUS} == names
    assert len(CORPUS) > 150


@pytest.mark.parametrize("partial", [False, True])
@pytest.mark.parametrize(("name", "value"), CORPUS)
def test_the_import_validates_as_the_api_serializer(name, value, partial):
    validator = _Validator()
    assert validator.plans is not None  # the fast path is in use
    fields = {"country": "ID", "email": "base@example.com", name: value}
    expected = _serializer(fields, partial=partial)
    assert validator.validate(fields, partial=partial) == expected
    fast = validator.fast(fields, partial=partial)
    if fast is not None:
        assert expected == (fast, [])


@pytest.mark.parametrize("partial", [False, True])
@pytest.mark.parametrize("missing", ["country", "email", "full_name"])
def test_a_missing_field_is_treated_as_the_serializer_treats_it(missing, partial):
    validator = _Validator()
    fields = {"country": "ID", "email": "base@example.com", "full_name": "Ani"}
    del fields[missing]
    expected = _serializer(fields, partial=partial)
    assert validator.validate(fields, partial=partial) == expected


def test_ordinary_rows_take_the_fast_path():
    validator = _Validator()
    row = {
        "country": "ID",
        "full_name": " Siti Rahma ",
        "email": "siti@example.com",
        "date_of_birth": "1990-02-28",
        "region": "",
    }
    fast = validator.fast(row, partial=False)
    assert fast is not None
    assert (fast, []) == _serializer(row, partial=False)
