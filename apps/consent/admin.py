"""Consent in the Django admin: privacy admins add purposes and draft notices; the
ledger and the state are read-only (they change through services only)."""

from django.contrib import admin, messages

from apps.consent.errors import ConsentError
from apps.consent.forms import (
    NoticeChangeAdminForm,
    PrivacyNoticeAdminForm,
    PurposeAdminForm,
)
from apps.consent.models import (
    ConsentEvent,
    ConsentState,
    NoticeChange,
    PrivacyNotice,
    Purpose,
)
from apps.consent.services import notice_publish
from apps.core.admin import ReadOnlyAdmin


@admin.register(Purpose)
class PurposeAdmin(admin.ModelAdmin):
    # Name and description are the English source; the other languages' fields
    # follow them (customers get one whole language, selectors.purpose_text).
    form = PurposeAdminForm
    list_display = ("code", "name", "legal_basis", "channel", "double_opt_in", "active")
    list_filter = ("active", "channel")
    readonly_fields = ("min_notice_version",)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # the ledger refers to purposes for ever: deactivate instead


class NoticeChangeInline(admin.TabularInline):
    model = NoticeChange
    form = NoticeChangeAdminForm
    extra = 1


@admin.register(PrivacyNotice)
class PrivacyNoticeAdmin(admin.ModelAdmin):
    form = PrivacyNoticeAdminForm
    list_display = ("version", "title", "effective_at", "published_at")
    inlines = [NoticeChangeInline]
    actions = ["publish"]
    readonly_fields = ("published_at",)

    def has_change_permission(self, request, obj=None) -> bool:
        # A published notice is what customers agreed under: it never changes.
        if obj is not None and obj.published_at is not None:
            return False
        return super().has_change_permission(request, obj)

    @admin.action(
        description="Publish (emails affected customers; material changes "
        "ask for fresh consent)"
    )
    def publish(self, request, queryset) -> None:
        for notice in queryset.order_by("version"):
            try:
                notice_publish(actor=request.user, notice=notice)
            except ConsentError as exc:
                self.message_user(
                    request, f"v{notice.version}: {exc}", messages.WARNING
                )
            else:
                self.message_user(request, f"Published v{notice.version}.")


@admin.register(ConsentEvent)
class ConsentEventAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "customer_id",
        "purpose",
        "granted",
        "source",
        "notice_version",
    )
    list_filter = ("purpose", "granted", "source")


@admin.register(ConsentState)
class ConsentStateAdmin(ReadOnlyAdmin):
    list_display = ("customer_id", "purpose", "granted", "notice_version", "updated_at")
    list_filter = ("purpose", "granted")
