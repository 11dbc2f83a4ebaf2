from django.contrib.auth import views as auth_views
from django.contrib.auth.mixins import LoginRequiredMixin
from django.shortcuts import redirect
from django.views.generic import TemplateView

from apps.accounts.forms import StaffLoginForm
from apps.accounts.models import Role
from apps.accounts.roles import capabilities_for


class StaffLoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = StaffLoginForm
    redirect_authenticated_user = True


class StaffLogoutView(auth_views.LogoutView):
    pass


class HomeView(LoginRequiredMixin, TemplateView):
    template_name = "accounts/home.html"

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and request.user.role == Role.CUSTOMER:
            return redirect("portal:consents")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        context["role_label"] = user.get_role_display()
        context["capabilities"] = capabilities_for(user.role)
        return context
