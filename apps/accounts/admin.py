from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import User
from apps.accounts.services import otp_disable
from apps.core.errors import DomainError

# django-otp's own device admins show authenticator keys and recovery codes and edit
# devices without an audit trail; the audited reset action below replaces them.
for _device in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_device):
        admin.site.unregister(_device)


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "role", "is_active", "last_login")
    # The search box is a GET form: what is typed in it travels in the URL. Usernames
    # only, not the names and email addresses Django's own admin searches.
    search_fields = ("username",)
    search_help_text = "A username."
    list_filter = ("role", "is_active")
    fieldsets = (
        *(DjangoUserAdmin.fieldsets or ()),
        ("Amanah", {"fields": ("role",)}),
    )
    actions = ["reset_second_factor"]

    @admin.action(description="Reset two-step sign-in (lost phone)")
    def reset_second_factor(self, request, queryset):
        done = 0
        for user in queryset:
            try:
                otp_disable(actor=request.user, user=user)
            except DomainError as error:
                self.message_user(request, f"{user}: {error}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(
                request,
                f"Reset two-step sign-in for {done} account(s); "
                "they set it up again at their next sign-in.",
            )
