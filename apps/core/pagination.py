"""The API's one pagination style: a cursor over a stable order (keyset pagination).

    {"next": "https://.../api/v1/customers/?cursor=...", "results": [...]}

A page starts after the last row of the one before (by the list's order, which ends in
a unique column), so rows added or changed while a client reads never shift a page:
nothing is skipped or read twice, and page 1,000 costs what page 1 does (no OFFSET,
no COUNT). `next` is null on the last page (a sync list's never is: see
`paginated_response`). The cursor is opaque to clients and signed: one this API did not
give, or gave for a list in another order, is a 400.

"Never shifts" holds for rows whose order columns do not change; a list ordered by a
column that can (a request's due date, moved by an extension) may show a row moved
behind the reader again, or not at all.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.core import signing
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.urls import replace_query_param

CURSOR_PARAM = "cursor"
PAGE_SIZE_PARAM = "page_size"
PAGE_SIZE = 50
BAD_CURSOR = "Not a cursor this list gave; start without one."
MAX_PAGE_SIZE = 1000


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        # Always microseconds and UTC: the strings sort as the times do.
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, UUID):
        return str(value)
    return value


@dataclass(frozen=True)
class Order:
    """A list's order: its key columns, each ascending or not (`-created_at`). The
    last must be unique (a primary key) so that the order is total."""

    fields: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [f.lstrip("-") for f in self.fields]

    def after(self, position: list[Any]) -> Q:
        """Rows after `position`, as a filter: (a > x) or (a = x and b > y) ..."""
        result: Q | None = None
        for i, spec in enumerate(self.fields):
            name = spec.lstrip("-")
            step = Q(
                **{f"{name}__{'lt' if spec.startswith('-') else 'gt'}": position[i]}
            )
            for earlier, value in zip(self.names[:i], position[:i], strict=False):
                step &= Q(**{earlier: value})
            result = step if result is None else result | step
        return result or Q()

    @property
    def salt(self) -> str:
        """Cursors are signed for their order: one list's cursor is no other's."""
        return "amanah.cursor:" + ",".join(self.fields)

    def key_of(self, row: Any) -> list[Any]:
        return [_encode_value(getattr(row, name)) for name in self.names]


class CursorPagination(BasePagination):
    """Cursor pages over a queryset ordered by `Order`, or over a short list already
    in that order (an agent's assigned customers)."""

    page_size_query_param = PAGE_SIZE_PARAM
    cursor_query_param = CURSOR_PARAM
    query_params = (CURSOR_PARAM, PAGE_SIZE_PARAM)

    def page_size(self, request: Request) -> int:
        raw = request.query_params.get(PAGE_SIZE_PARAM)
        if raw is None:
            return PAGE_SIZE
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
            raise ValidationError(
                {PAGE_SIZE_PARAM: [f"A whole number from 1 to {MAX_PAGE_SIZE}."]}
            )
        return int(raw)

    def position(self, request: Request, order: Order) -> list[Any] | None:
        raw = request.query_params.get(CURSOR_PARAM)
        if raw is None:
            return None
        try:
            value = signing.loads(raw, salt=order.salt)
        except signing.BadSignature:
            value = None
        if not (
            isinstance(value, list)
            and len(value) == len(order.fields)
            and all(isinstance(v, str | int) for v in value)
        ):
            raise ValidationError({CURSOR_PARAM: [BAD_CURSOR]})
        return value

    def page(
        self,
        request: Request,
        items: QuerySet[Any] | Sequence[Any],
        order: Order,
        *,
        resumable: bool = False,
    ) -> tuple[list[Any], str | None]:
        size = self.page_size(request)
        position = self.position(request, order)
        if isinstance(items, QuerySet) and not items.query.is_sliced:
            if position is not None:
                try:
                    items = items.filter(order.after(position))
                except (ValueError, TypeError, DjangoValidationError):
                    # A cursor value of the wrong type for its column.
                    raise ValidationError({CURSOR_PARAM: [BAD_CURSOR]}) from None
            rows = list(items.order_by(*order.fields)[: size + 1])
        else:
            # A short list already in order (an agent's customers, a search's one
            # match): filtered here.
            rows = list(items)
            if position is not None:
                rows = [row for row in rows if self._after(order, row, position)]
            rows = rows[: size + 1]
        more = len(rows) > size
        rows = rows[:size]
        next_url = None
        if rows and (more or resumable):
            cursor = signing.dumps(order.key_of(rows[-1]), salt=order.salt)
            next_url = replace_query_param(
                request.build_absolute_uri(), CURSOR_PARAM, cursor
            )
        elif resumable:
            # Nothing new past the cursor: the same place, to ask again later.
            next_url = request.build_absolute_uri()
        return rows, next_url

    @staticmethod
    def _after(order: Order, row: Any, position: list[Any]) -> bool:
        for spec, value, mark in zip(
            order.fields, order.key_of(row), position, strict=True
        ):
            mark = str(mark)  # a cursor's values are compared as the key's text
            if value != mark:
                return value < mark if spec.startswith("-") else value > mark
        return False

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return [
            {
                "name": CURSOR_PARAM,
                "required": False,
                "in": "query",
                "description": "Where the page starts: the `next` link of the page "
                "before gives it. Leave out for the first page.",
                "schema": {"type": "string"},
            },
            {
                "name": PAGE_SIZE_PARAM,
                "required": False,
                "in": "query",
                "description": f"Rows per page, 1 to {MAX_PAGE_SIZE} "
                f"(default {PAGE_SIZE}).",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_PAGE_SIZE,
                },
            },
        ]

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "nullable": True,
                    "format": "uri",
                    "description": "The next page, or null on the last one.",
                },
                "results": schema,
            },
        }


def paginated_response(
    *,
    request: Request,
    items: QuerySet[Any] | Sequence[Any],
    order: Order,
    serialize: Callable[[list[Any]], Any],
    resumable: bool = False,
) -> Response:
    """One page of `items` in `order`, shaped by `serialize`: `{next, results}`.

    `resumable` (the sync lists): `next` is never null. On the last page it points
    past its last row (or, with no rows, where the reader is), so a client keeps it
    and asks again later for what changed since."""
    rows, next_url = CursorPagination().page(request, items, order, resumable=resumable)
    return Response({"next": next_url, "results": serialize(rows)})
