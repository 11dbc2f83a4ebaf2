from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.crypto.models import DataKey


@admin.register(DataKey)
class DataKeyAdmin(ReadOnlyAdmin):
    """Key metadata only: the wrapped key bytes are never shown."""

    list_display = ("id", "kek_version", "created_at", "rotated_at", "destroyed_at")
    list_filter = ("kek_version",)
    fields = list_display
    readonly_fields = list_display
