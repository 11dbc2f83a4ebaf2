from django.contrib import admin

from apps.core.admin import ReadOnlyAdmin
from apps.retention import customer_admin  # noqa: F401 - registers the Customer admin
from apps.retention.models import DisposalLogEntry, DisposalRun


@admin.register(DisposalRun)
class DisposalRunAdmin(ReadOnlyAdmin):
    list_display = ("pk", "started_at", "finished_at", "status", "batch_size")


@admin.register(DisposalLogEntry)
class DisposalLogEntryAdmin(ReadOnlyAdmin):
    list_display = ("disposed_at", "policy", "action", "subject_ref", "records")
    list_filter = ("policy", "action")
