from django.contrib import admin

from apps.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the trail is append-only, and the database refuses edits anyway."""

    list_display = ("seq", "created_at", "actor", "actor_role", "action", "target_type")
    list_filter = ("action", "actor_role")
    search_fields = ("target_id",)
    ordering = ("-seq",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
