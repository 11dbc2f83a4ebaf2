from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import Role, User
from apps.accounts.permissions import request_user
from apps.accounts.services import otp_disable, user_active_set
from apps.core.errors import DomainError

# django-otp's own device admins show authenticator keys and recovery codes and edit
# devices without an audit trail; the audited reset action below replaces them.
for _device in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_device):
        admin.site.unregister(_device)

_CONFIRM_TEMPLATE = "admin/accounts/user/active_confirm.html"


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
    # "Active" changes only through the deactivate and reactivate actions and
    # buttons (`user_active_set`: confirmed, audited, sessions and tokens ended).
    readonly_fields = ("is_active",)
    change_form_template = "admin/accounts/user/change_form.html"
    actions = ["reset_second_factor", "deactivate_accounts", "reactivate_accounts"]

    def has_account_active_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(
            user.is_superuser or getattr(user, "role", "") == Role.PRIVACY_ADMIN
        )

    def get_urls(self):
        active = path(
            "<int:user_id>/active/",
            self.admin_site.admin_view(self.active_view),
            name="accounts_user_active",
        )
        return [active, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_set_active": self.has_account_active_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def active_view(self, request: HttpRequest, user_id: int) -> HttpResponse:
        """One account's "Deactivate" or "Reactivate" button: a confirmation page
        (GET), then the change (POST, with its CSRF token)."""
        if not self.has_account_active_permission(request):
            raise PermissionDenied
        user = User.objects.filter(pk=user_id).first()
        if user is None:
            raise Http404
        active = not user.is_active
        change_url = reverse("admin:accounts_user_change", args=[user.pk])
        if request.method == "POST":
            # The way the confirmed page said: a second click, or another admin
            # first, never switches the account back.
            wanted = request.POST.get("active")
            if wanted not in ("0", "1"):
                return self._confirm_page(
                    request,
                    [user],
                    active=active,
                    error="Confirm on this page.",
                    status=400,
                )
            active = wanted == "1"
            try:
                changed = user_active_set(
                    actor=request_user(request), user=user, active=active
                )
            except DomainError as error:
                return self._confirm_page(
                    request, [user], active=active, error=error.message, status=400
                )
            if changed:
                self.message_user(request, _done(1, active), messages.SUCCESS)
            return HttpResponseRedirect(change_url)
        return self._confirm_page(request, [user], active=active)

    def _confirm_page(
        self,
        request: HttpRequest,
        users: list[User],
        *,
        active: bool,
        action: str = "",
        error: str = "",
        status: int = 200,
    ) -> TemplateResponse:
        verb = "Reactivate" if active else "Deactivate"
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{verb} {len(users)} account(s)?",
            "verb": verb,
            "active": active,
            "users": users,
            "action": action,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "error": error,
        }
        return TemplateResponse(request, _CONFIRM_TEMPLATE, context, status=status)

    def _active_action(self, request, queryset, *, active: bool):
        users = list(queryset.order_by("username"))
        action = "reactivate_accounts" if active else "deactivate_accounts"
        if request.POST.get("confirm") != "yes":
            return self._confirm_page(request, users, active=active, action=action)
        done = 0
        for user in users:
            try:
                done += user_active_set(actor=request.user, user=user, active=active)
            except DomainError as error:
                self.message_user(request, f"{user}: {error}", messages.ERROR)
        if done:
            self.message_user(request, _done(done, active), messages.SUCCESS)
        return None

    @admin.action(
        description="Deactivate the selected staff accounts",
        permissions=["account_active"],
    )
    def deactivate_accounts(self, request, queryset):
        return self._active_action(request, queryset, active=False)

    @admin.action(
        description="Reactivate the selected staff accounts",
        permissions=["account_active"],
    )
    def reactivate_accounts(self, request, queryset):
        return self._active_action(request, queryset, active=True)

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


def _done(count: int, active: bool) -> str:
    if active:
        return (
            f"Reactivated {count} account(s). Their API tokens stay revoked; they "
            "sign in again."
        )
    return (
        f"Deactivated {count} account(s): their sessions and API tokens are ended, "
        "and their identity provider cannot reactivate them."
    )
