from django.contrib import admin

from apps.retention.models import DisposalLogEntry, DisposalRun


@admin.register(DisposalRun)
class DisposalRunAdmin(admin.ModelAdmin):
    list_display = ("pk", "started_at", "finished_at", "status", "batch_size")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(DisposalLogEntry)
class DisposalLogEntryAdmin(DisposalRunAdmin):
    list_display = ("disposed_at", "policy", "action", "subject_ref", "records")
    list_filter = ("policy", "action")
