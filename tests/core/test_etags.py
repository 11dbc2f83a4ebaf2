import re
from datetime import UTC, datetime, timedelta, timezone

import pytest

from apps.core.errors import PreconditionFailed
from apps.core.etags import etag_check, etag_of


def test_an_etag_is_a_quoted_strong_tag_of_32_hex_characters():
    tag = etag_of("customer", 1, None)
    assert re.fullmatch(r'"[0-9a-f]{32}"', tag)
    assert tag == etag_of("customer", 1, None)


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("a", "bc"), ("ab", "c")),  # parts never run together
        ((None,), ("",)),
        ((None,), ("None",)),
        ((b"1",), ("1",)),
        ((1,), (2,)),
    ],
)
def test_different_parts_give_different_tags(one, other):
    assert etag_of(*one) != etag_of(*other)


def test_one_moment_gives_one_tag_in_any_time_zone():
    moment = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    elsewhere = moment.astimezone(timezone(timedelta(hours=7)))
    assert etag_of(moment) == etag_of(elsewhere)


@pytest.mark.parametrize(
    "if_match", ['"abc"', '"x", "abc"', '"x","abc"', "*", ' "abc" ']
)
def test_a_matching_if_match_passes(if_match):
    etag_check(if_match=if_match, current='"abc"')


@pytest.mark.parametrize(
    "if_match", ['"abd"', 'W/"abc"', "abc", '"abc', '"x", W/"abc"', ""]
)
def test_a_stale_or_weak_if_match_is_412(if_match):
    with pytest.raises(PreconditionFailed) as raised:
        etag_check(if_match=if_match, current='"abc"')
    assert raised.value.status == 412
    assert raised.value.code == "stale"
    assert "changed since you read it" in raised.value.message
    assert "read it again" in raised.value.message
