"""Notes staff searches by email or phone and staff 404s on customer ids, for the
enumeration and probing rules: the kind and the id asked for, never the searched
value."""

import logging
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.db import DatabaseError, transaction

from apps.accounts.models import STAFF_ROLES
from apps.core.parsers import json_loads_bounded
from apps.monitoring.models import LookupKind, SearchBy
from apps.monitoring.services import lookup_record

logger = logging.getLogger(__name__)

# The pages and endpoints that search customers by exact email or phone. Each takes
# them by POST only (a URL carrying them is refused with a 400) and answers a search
# it ran with a 200: the staff desk, the API's search, the admin's "Find by email or
# phone".
SEARCH_VIEWS = frozenset(
    {"staff:desk", "customer-search", "admin:customers_customer_find"}
)


class StaffLookupMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        if match is None:
            return response
        if response.status_code == 404 and "customer_id" in match.kwargs:
            self._note(
                request,
                kind=LookupKind.NOT_FOUND,
                customer_id=match.kwargs["customer_id"],
            )
        elif response.status_code == 200 and getattr(request, "_searched_by", ""):
            self._note(request, kind=LookupKind.SEARCH, search_by=request._searched_by)
        return response

    def process_view(self, request, view_func, view_args, view_kwargs) -> None:
        # Before the view: the API's parser consumes the body, which cannot be read
        # after it.
        if (
            request.method == "POST"
            and request.resolver_match.view_name in SEARCH_VIEWS
        ):
            request._searched_by = _searched_by(_posted(request))

    def _note(self, request, **lookup) -> None:
        # Token-authenticated API calls: DRF has set the user on the request by now.
        user = getattr(request, "user", None)
        if not (user and user.is_authenticated and user.role in STAFF_ROLES):
            return
        try:
            with transaction.atomic():
                lookup_record(staff=user, **lookup)
        except DatabaseError:
            # Monitoring must never break the page it watches.
            logger.exception("monitoring.lookup_not_recorded")


def _posted(request) -> Mapping[str, Any]:
    """What a search POST carries: a JSON body (the API) or form fields."""
    try:
        if request.content_type == "application/json":
            data = json_loads_bounded(request.body)
            return data if isinstance(data, dict) else {}
        return request.POST
    except (ValueError, SuspiciousOperation, OSError):
        # Not JSON, too big, cut off: the view refuses it; nothing was searched.
        return {}


def _searched_by(data: Mapping[str, Any]) -> str:
    """Which of email and phone a search names ("" for neither)."""
    email, phone = (
        isinstance(value, str) and bool(value.strip())
        for value in (data.get("email"), data.get("phone"))
    )
    if email and phone:
        return SearchBy.BOTH
    return SearchBy.EMAIL if email else SearchBy.PHONE if phone else ""
