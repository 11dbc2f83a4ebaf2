"""Monitoring records in the Django admin: read-only (they change through services)."""

from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.monitoring.models import Alert, StaffLookup


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ("pk", "created_at", "rule", "severity", "staff", "status")
    list_filter = ("status", "severity", "rule")


@admin.register(StaffLookup)
class StaffLookupAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "staff", "kind", "search_by", "customer_id")
    list_filter = ("kind",)
