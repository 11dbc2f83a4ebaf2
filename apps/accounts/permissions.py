"""Role checks for pages (a mixin) and for the API (a DRF permission)."""

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import Resolver404, resolve
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from apps.accounts.models import STAFF_ROLES, User
from apps.core.errors import Forbidden


def request_user(request: HttpRequest | Request) -> User:
    """The signed-in user of a request its view's sign-in check let through
    (`SignInRequiredMixin`, the API's authenticated-only permissions). Raises
    PermissionDenied for anyone else, whom those checks turned away already."""
    user = request.user
    if not isinstance(user, User):
        raise PermissionDenied
    return user


def has_role(user, roles: Iterable[str]) -> bool:
    return bool(user and user.is_authenticated and user.role in set(roles))


def sign_in_next(request: HttpRequest) -> str | None:
    """Where signing in (or giving the second factor) comes back to, for `next=`.

    The path only: a query string may hold a searched email address or phone number,
    which must not be copied into another URL (an expired session on
    `/staff/?email=...`). Never a path holding a one-time token (a download link): a
    URL is kept in browser history, server logs and Referer headers. The view behind
    such a path keeps its token server-side and names a path without it
    (`sign_in_next(request, **kwargs)` on the view class); without one, None: sign-in
    goes to the start page.
    """
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return request.path
    if not any("token" in name for name in match.kwargs):
        return request.path
    view_class = getattr(match.func, "view_class", None)
    keep = getattr(view_class, "sign_in_next", None)
    return keep(request, **match.kwargs) if keep is not None else None


class SignInRequiredMixin(LoginRequiredMixin):
    """`LoginRequiredMixin` whose sign-in link carries only what `sign_in_next`
    allows in `next`: the path, never its query string or a token in it."""

    def handle_no_permission(self):
        if self.request.user.is_authenticated:
            return super().handle_no_permission()
        target = sign_in_next(self.request)
        if target is None:
            return HttpResponseRedirect(resolve_url(self.get_login_url()))
        return redirect_to_login(
            target, self.get_login_url(), self.get_redirect_field_name()
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


class ApiDocsPermission(BasePermission):
    """Who reads the OpenAPI schema and its docs pages (SPECTACULAR_SETTINGS'
    SERVE_PERMISSIONS): signed-in staff (a token, or a session past its second
    factor) only, unless AMANAH_API_DOCS_OPEN (development)."""

    message = "Sign in as staff to read the API schema and docs."

    def has_permission(self, request, view) -> bool:
        return settings.AMANAH_API_DOCS_OPEN or has_role(request.user, STAFF_ROLES)


def ensure_role(user, *roles: str) -> None:
    """Raise Forbidden (403) unless the user has one of `roles`."""
    if not has_role(user, roles):
        raise Forbidden("Your role may not do this.")
