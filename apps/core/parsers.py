"""JSON request bodies read with a bound on nesting: the API's parser and its helper.

Python's decoder recurses once per level: a body nested 100,000 levels deep raises
RecursionError (a 500), and one a few hundred deep still reaches serializers, the audit
trail and the renderer. Bodies deeper than MAX_JSON_DEPTH are refused before decoding.
"""

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError
from rest_framework.utils.json import strict_constant

# Far deeper than any body the API takes (its deepest, a list of objects, is 2 levels),
# far shallower than the decoder's recursion limit (about 1,000 levels less the stack).
MAX_JSON_DEPTH = 64

_ESCAPE = re.compile(r"\\.", re.DOTALL)
_STRING = re.compile(r'"[^"]*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class JSONTooDeep(ValueError):
    def __init__(self, limit: int):
        super().__init__(f"JSON nested deeper than {limit} levels.")


def _depth_exceeds(text: str, limit: int) -> bool:
    # No more openers than the limit cannot nest past it: most bodies stop here, at the
    # cost of two str.count calls (the 4 MB audience body has two brackets).
    if text.count("[") + text.count("{") <= limit:
        return False
    # Brackets inside strings are text. Escapes go first (so `\"` cannot end a string),
    # then strings, then everything but brackets; all three at regex speed.
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", _ESCAPE.sub("", text)))
    depth = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def json_loads_bounded(
    data: str | bytes,
    *,
    max_depth: int = MAX_JSON_DEPTH,
    parse_constant: Callable[[str], Any] | None = None,
) -> Any:
    """json.loads for request bodies. Raises JSONTooDeep past max_depth levels and
    ValueError on anything else that is not JSON."""
    if isinstance(data, bytes | bytearray):
        data = data.decode(json.detect_encoding(data), "surrogatepass")
    if _depth_exceeds(data, max_depth):
        raise JSONTooDeep(max_depth)
    try:
        return json.loads(data, parse_constant=parse_constant)
    except RecursionError:
        # Unreachable after the scan, short of a stack already deep: still a refusal.
        raise JSONTooDeep(max_depth) from None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing bodies nested deeper than MAX_JSON_DEPTH (400,
    code `too_deep`)."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        # DRF's own charset check (no bytes-to-bytes codecs); its stubs lack it.
        encoding = parsers.get_encoding(parser_context or {})  # type: ignore[attr-defined]
        parse_constant = strict_constant if self.strict else None
        try:
            text = stream.read().decode(encoding)
            return json_loads_bounded(text, parse_constant=parse_constant)
        except JSONTooDeep as exc:
            raise ParseError(str(exc), code="too_deep") from None
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
