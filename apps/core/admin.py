from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records that change through services only: the admin shows, never edits."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
