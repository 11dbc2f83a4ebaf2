"""Notes staff searches by email or phone and staff 404s on customer ids, for the
enumeration and probing rules: the kind and the id asked for, never the searched
value."""

import logging

from django.db import DatabaseError, transaction

from apps.accounts.models import STAFF_ROLES
from apps.monitoring.models import LookupKind, SearchBy
from apps.monitoring.services import lookup_record

logger = logging.getLogger(__name__)

# The pages and endpoints that search customers by exact email or phone.
SEARCH_VIEWS = frozenset({"staff:desk", "customer-list"})


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
        elif (
            request.method == "GET"
            and response.status_code == 200
            and match.view_name in SEARCH_VIEWS
        ):
            email = request.GET.get("email", "").strip()
            phone = request.GET.get("phone", "").strip()
            if email or phone:
                search_by = (
                    SearchBy.BOTH
                    if email and phone
                    else SearchBy.EMAIL
                    if email
                    else SearchBy.PHONE
                )
                self._note(request, kind=LookupKind.SEARCH, search_by=search_by)
        return response

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
