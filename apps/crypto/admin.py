from django.contrib import admin

from apps.crypto.models import DataKey


@admin.register(DataKey)
class DataKeyAdmin(admin.ModelAdmin):
    """Key metadata only: the wrapped key bytes are never shown."""

    list_display = ("id", "kek_version", "created_at", "rotated_at", "destroyed_at")
    list_filter = ("kek_version",)
    fields = list_display
    readonly_fields = list_display

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
