from collections.abc import Callable, Sequence
from typing import Any

from django.db.models import QuerySet
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000


def paginated_response(
    *,
    request: Request,
    view: Any,
    items: QuerySet[Any] | Sequence[Any],
    serialize: Callable[[list[Any]], Any],
) -> Response:
    """One page of `items`, shaped by `serialize`, with DRF's count/next/previous."""
    paginator = Pagination()
    page = paginator.paginate_queryset(items, request, view=view)
    # None only for a paginator without a page size; this one has one.
    return paginator.get_paginated_response(serialize(page or []))
