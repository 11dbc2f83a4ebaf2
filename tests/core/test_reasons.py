import pytest

from apps.core.errors import Conflict, DomainError
from apps.core.reasons import REASON_MIN_LENGTH, reason_require


def test_a_reason_is_trimmed():
    assert reason_require("  Customer asked by phone ", field="reason") == (
        "Customer asked by phone"
    )


@pytest.mark.parametrize(
    "text", [None, "", "   ", "short", "x" * (REASON_MIN_LENGTH - 1)]
)
def test_a_short_reason_is_refused_on_its_field(text):
    with pytest.raises(DomainError) as caught:
        reason_require(text, field="note")
    assert caught.value.field == "note"
    assert str(caught.value) == "Give a reason of at least 10 characters."


def test_the_caller_names_its_error_and_words():
    with pytest.raises(Conflict, match=r"^Say why: 10 or more$"):
        reason_require(
            "  padded  ", field="why", message="Say why: {min} or more", error=Conflict
        )


def test_braces_in_the_words_are_kept():
    with pytest.raises(DomainError, match=r"^Say \{why\}: 10$"):
        reason_require("", field="why", message="Say {why}: {min}")
