"""Role checks for pages (a mixin) and for the API (a DRF permission)."""

from collections.abc import Iterable

from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

from apps.core.errors import Forbidden


def has_role(user, roles: Iterable[str]) -> bool:
    return bool(user and user.is_authenticated and user.role in set(roles))


class SignInRequiredMixin(LoginRequiredMixin):
    """`LoginRequiredMixin` whose sign-in link carries only the path in `next`: a
    query string may hold a searched email address or phone number, which must not be
    copied into another URL (an expired session on `/staff/?email=...`)."""

    def handle_no_permission(self):
        if self.request.user.is_authenticated:
            return super().handle_no_permission()
        return redirect_to_login(
            self.request.path, self.get_login_url(), self.get_redirect_field_name()
        )


class RoleRequiredMixin(SignInRequiredMixin):
    """A page for the listed roles only: others who are signed in get 403."""

    allowed_roles: Iterable[str] = ()

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and not has_role(
            request.user, self.allowed_roles
        ):
            raise PermissionDenied
        return super().dispatch(request, *args, **kwargs)


def role_permission(*roles: str) -> type[BasePermission]:
    """A DRF permission class admitting signed-in users with one of `roles`."""

    class HasRole(BasePermission):
        message = "Your role may not use this endpoint."

        def has_permission(self, request, view) -> bool:
            return has_role(request.user, roles)

    HasRole.__name__ = "HasRole_" + "_".join(roles)
    return HasRole


def ensure_role(user, *roles: str) -> None:
    """Raise Forbidden (403) unless the user has one of `roles`."""
    if not has_role(user, roles):
        raise Forbidden("Your role may not do this.")
