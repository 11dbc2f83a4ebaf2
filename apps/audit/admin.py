from django.contrib import admin

from apps.audit.models import AuditEvent
from apps.core.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the trail is append-only, and the database refuses edits anyway."""

    list_display = ("seq", "created_at", "actor", "actor_role", "action", "target_type")
    list_filter = ("action", "actor_role")
    search_fields = ("target_id",)
    ordering = ("-seq",)
