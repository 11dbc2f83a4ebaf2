"""Customers in the Django admin: masked values only, never ciphertext; exact search by
email or phone through the blind index, by POST ("Find by email or phone"), never in a
URL; close and erase go through the services (erase refuses a customer under a legal
hold). Every page that shows a customer's values, masked, writes the access log: one row
per customer shown, naming the fields whose page shows something of the value.

It lives in retention, not customers: its pages are access-logged (apps.access) and its
erase action is retention's, and customers imports neither. Registered on the Customer
model, its URLs are the model's (admin:customers_customer_*) wherever it is defined.
apps/retention/admin.py imports it, so the admin's autodiscovery registers it."""

import uuid
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import SEARCH_VAR
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import path, reverse

from apps.access.services import access_log_write_masked
from apps.accounts.models import Role
from apps.core.errors import DomainError
from apps.crypto.errors import IntegrityFailure
from apps.crypto.fields import ERASED
from apps.customers.forms import SEARCH_FIELDS, CustomerSearchForm
from apps.customers.masking import DOT, mask_field
from apps.customers.models import Customer
from apps.customers.registry import PII_FIELDS
from apps.customers.selectors import customer_list, customer_queryset
from apps.customers.services import customer_close
from apps.retention.services import customer_erase

PLAIN_FIELDS = (
    "id",
    "status",
    "country",
    "region",
    "created_at",
    "last_activity_at",
    "closed_at",
    "erased_at",
)
# At most this many matches on the find page (a phone number may be shared).
FIND_LIMIT = 20
FIND_TITLE = "Find a customer by email or phone"
# The changelist's `?q=` and a find URL carrying a value: refused, naming the POST form.
SEARCH_IN_URL = (
    "Email addresses and phone numbers are not taken in a URL (server and proxy logs "
    "keep URLs): use this form, which sends them by POST. Nothing was searched."
)
ID_ONLY = (
    "The customers list's `q` takes a customer id only. Find a customer by "
    "email address or phone number with this form (“Find by email or phone”), which "
    "sends them by POST, never in a URL. Nothing was searched."
)


def _customer_id(term: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(term)
    except ValueError:
        return None


# The masked values the list and the find page show; the change page shows them all.
LISTED_FIELDS = ("full_name", "email", "phone")


def _fields_shown(customer: Customer, names: tuple[str, ...]) -> list[str]:
    """The fields whose masked value shows something of the value (not "—", "•••",
    "[erased]" or an integrity error). Decrypted already by the page: cached."""
    shown = []
    for name in names:
        try:
            masked = mask_field(name, getattr(customer, name))
        except IntegrityFailure:
            continue
        if masked and masked not in (DOT, str(ERASED)):
            shown.append(name)
    return shown


def _log_when_shown(
    request: HttpRequest, response, customers, names: tuple[str, ...]
) -> None:
    """Write the access log once the page is rendered (what it showed, shown)."""

    def log(rendered):
        access_log_write_masked(
            actor=request.user,
            shown={c.pk: _fields_shown(c, names) for c in customers},
        )
        return rendered

    response.add_post_render_callback(log)


def _masked_column(name: str, label: str) -> Callable[[Any, Customer], str]:
    @admin.display(description=f"{label} (masked)")
    def column(self: Any, obj: Customer) -> str:
        try:
            return mask_field(name, getattr(obj, name)) or "—"
        except IntegrityFailure:
            return "⚠ integrity error (logged)"

    column.__name__ = f"masked_{name}"
    return column


class CustomerAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "status",
        "country",
        "masked_full_name",
        "masked_email",
        "masked_phone",
        "created_at",
    )
    list_filter = ("status", "country")
    # No search box: a GET form sends what is typed in it in the URL, an email address
    # or phone number too. "Find by email or phone" (a POST form) is linked instead;
    # `?q=<customer id>` in a URL still narrows the list to that customer.
    ordering = ("-created_at",)
    readonly_fields = PLAIN_FIELDS + tuple(f"masked_{f.name}" for f in PII_FIELDS)
    fields = readonly_fields
    actions = ("close_accounts", "erase_customers")
    list_per_page = 50

    def get_queryset(self, request) -> QuerySet[Customer]:
        return customer_queryset()

    def get_urls(self):
        find = path(
            "find/",
            self.admin_site.admin_view(self.find_view),
            name="customers_customer_find",
        )
        # Before the model's own: `<path:object_id>/` would take "find/".
        return [find, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        term = request.GET.get(SEARCH_VAR, "").strip()
        if term and _customer_id(term) is None:
            return self._find_page(request, refused=ID_ONLY, status=400)
        response = super().changelist_view(request, extra_context)
        changelist = (getattr(response, "context_data", None) or {}).get("cl")
        if changelist is not None:
            _log_when_shown(request, response, changelist.result_list, LISTED_FIELDS)
        return response

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        customer = (getattr(response, "context_data", None) or {}).get("original")
        if customer is not None:
            names = tuple(spec.name for spec in PII_FIELDS)
            _log_when_shown(request, response, [customer], names)
        return response

    def get_search_results(self, request, queryset, search_term):
        customer_id = _customer_id(search_term.strip())
        if customer_id is None:  # blank: changelist_view refuses anything else
            return queryset, False
        return queryset.filter(pk=customer_id), False

    def find_view(self, request: HttpRequest) -> TemplateResponse:
        """Exact search by email and/or phone, sent by POST and answered on the page:
        masked matches, each linked to its change page by id."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        if SEARCH_FIELDS & request.GET.keys():
            return self._find_page(request, refused=SEARCH_IN_URL, status=400)
        if request.method == "POST":
            form = CustomerSearchForm(request.POST)
            if not form.is_valid():
                return self._find_page(request, form=form, status=400)
            found = list(customer_list(**form.cleaned_data)[:FIND_LIMIT])
            response = self._find_page(request, form=form, found=found)
            _log_when_shown(request, response, found, LISTED_FIELDS)
            return response
        return self._find_page(request)

    def _find_page(
        self,
        request: HttpRequest,
        *,
        form: CustomerSearchForm | None = None,
        found: list[Customer] | None = None,
        refused: str = "",
        status: int = 200,
    ) -> TemplateResponse:
        rows = None
        if found is not None:
            rows = [
                {
                    "url": reverse("admin:customers_customer_change", args=[c.pk]),
                    "customer": c,
                    **{
                        name: getattr(self, f"masked_{name}")(c)
                        for name in ("full_name", "email", "phone")
                    },
                }
                for c in found
            ]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": FIND_TITLE,
            "form": form or CustomerSearchForm(),
            "rows": rows,
            "refused": refused,
        }
        return TemplateResponse(
            request, "admin/customers/customer/find.html", context, status=status
        )

    def has_add_permission(self, request) -> bool:
        return False  # customers are created through the API and its validation

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # erasure is crypto-shredding: use the "erase" action

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_governance_permission(self, request) -> bool:
        return request.user.is_superuser or request.user.role == Role.PRIVACY_ADMIN

    def _run(self, request, queryset, service, verb: str) -> None:
        done = 0
        for customer in queryset:
            try:
                service(actor=request.user, customer=customer)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{customer}: {exc}", messages.WARNING)
        self.message_user(request, f"{verb} {done} customer(s).", messages.SUCCESS)

    @admin.action(description="Close the selected accounts", permissions=["governance"])
    def close_accounts(self, request, queryset) -> None:
        self._run(request, queryset, customer_close, "Closed")

    @admin.action(
        description="Erase the selected customers (crypto-shred, cannot be undone)",
        permissions=["governance"],
    )
    def erase_customers(self, request, queryset) -> None:
        self._run(request, queryset, customer_erase, "Erased")


# One masked, read-only column per registered PII field.
for _field in PII_FIELDS:
    setattr(
        CustomerAdmin,
        f"masked_{_field.name}",
        _masked_column(_field.name, str(_field.label)),
    )

admin.site.register(Customer, CustomerAdmin)
