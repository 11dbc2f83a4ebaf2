"""Access records in the Django admin: read-only (they change through services only)."""

from django.contrib import admin

from apps.access.models import (
    AccessLogEntry,
    FieldPolicy,
    Interaction,
    RelayEvent,
    Reveal,
)
from apps.core.admin import ReadOnlyAdmin


@admin.register(FieldPolicy)
class FieldPolicyAdmin(ReadOnlyAdmin):
    list_display = ("role", "category", "visibility", "revealable", "updated_at")
    list_filter = ("role", "category")


@admin.register(Interaction)
class InteractionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "staff",
        "customer_id",
        "opened_at",
        "expires_at",
        "closed_at",
    )
    list_filter = ("kind", "close_reason")


@admin.register(Reveal)
class RevealAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "staff",
        "customer_id",
        "fields",
        "status",
        "expires_at",
    )
    list_filter = ("status",)


@admin.register(AccessLogEntry)
class AccessLogEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "staff", "staff_role", "customer_id", "purpose")
    list_filter = ("purpose", "staff_role")


@admin.register(RelayEvent)
class RelayEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "interaction_id", "caller_party", "outcome")
    list_filter = ("outcome",)
