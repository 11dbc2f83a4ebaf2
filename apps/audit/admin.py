from django.contrib import admin

from apps.audit.models import AuditCheckpoint, AuditEvent, ChainVerification
from apps.core.admin import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the trail is append-only, and the database refuses edits anyway."""

    list_display = ("seq", "created_at", "actor", "actor_role", "action", "target_type")
    list_filter = ("action", "actor_role")
    search_fields = ("target_id",)
    ordering = ("-seq",)


@admin.register(AuditCheckpoint)
class AuditCheckpointAdmin(ReadOnlyAdmin):
    list_display = ("taken_at", "seq", "count", "kid", "path")
    ordering = ("-taken_at",)


@admin.register(ChainVerification)
class ChainVerificationAdmin(ReadOnlyAdmin):
    list_display = ("verified_at", "ok", "count", "head_seq", "source", "reason")
    list_filter = ("ok", "source")
    ordering = ("-verified_at",)
