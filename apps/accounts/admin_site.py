"""The project's admin site: Django's, whose sign-in redirect carries only what
`sign_in_next` allows in `next` (the path; never a query string, which may hold a
searched email address or phone number, nor a token)."""

from functools import wraps

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.cache import never_cache

from apps.accounts.permissions import sign_in_next


class AmanahAdminSite(admin.AdminSite):
    def admin_view(self, view, cacheable=False):
        guarded = super().admin_view(view, cacheable)

        @never_cache
        @wraps(view)
        def inner(request, *args, **kwargs):
            logout = reverse("admin:logout", current_app=self.name)
            if self.has_permission(request) or request.path == logout:
                return guarded(request, *args, **kwargs)
            # Django's own redirect copies get_full_path() into `next`.
            login = reverse("admin:login", current_app=self.name)
            target = sign_in_next(request)
            if target is None:
                return HttpResponseRedirect(login)
            return redirect_to_login(target, login)

        return inner
