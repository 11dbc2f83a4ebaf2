"""Customers in the Django admin: masked values only, never ciphertext; exact search by
email or phone through the blind index; close and erase go through the services."""

from django.contrib import admin, messages
from django.db.models import QuerySet

from apps.accounts.models import Role
from apps.core.errors import DomainError
from apps.crypto.errors import IntegrityFailure
from apps.customers.masking import mask_field
from apps.customers.models import Customer
from apps.customers.registry import PII_FIELDS
from apps.customers.selectors import customer_list, customer_queryset
from apps.customers.services import customer_close, customer_erase

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


def _masked_column(name: str, label: str):
    def column(self, obj: Customer) -> str:
        try:
            return mask_field(name, getattr(obj, name)) or "—"
        except IntegrityFailure:
            return "⚠ integrity error (logged)"

    column.short_description = f"{label} (masked)"
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
    # The search box takes an exact email or phone; see get_search_results.
    search_fields = ("email_index",)
    search_help_text = "Exact email address or phone number (searched by blind index)."
    ordering = ("-created_at",)
    readonly_fields = PLAIN_FIELDS + tuple(f"masked_{f.name}" for f in PII_FIELDS)
    fields = readonly_fields
    actions = ("close_accounts", "erase_customers")
    list_per_page = 50

    def get_queryset(self, request) -> QuerySet[Customer]:
        return customer_queryset()

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        by_email = "@" in term
        matches = customer_list(email=term) if by_email else customer_list(phone=term)
        return queryset.filter(pk__in=matches.values("pk")), False

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
        _masked_column(_field.name, _field.label),
    )

admin.site.register(Customer, CustomerAdmin)
