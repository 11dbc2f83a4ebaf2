"""The compliance home (`/compliance/`): one page that leads to every compliance
task, with what needs attention, read from the selectors of the apps that hold it."""

from django.views.generic import TemplateView

from apps.accounts.models import GOVERNANCE_ROLES
from apps.accounts.permissions import RoleRequiredMixin
from apps.requests.selectors import request_overdue_count


class ComplianceHomeView(RoleRequiredMixin, TemplateView):
    allowed_roles = GOVERNANCE_ROLES
    template_name = "compliance/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["overdue_requests"] = request_overdue_count()
        return context
