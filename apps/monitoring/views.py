"""The alerts page for compliance officers and privacy admins: list, counts, and the
handling buttons (plain forms, no JavaScript)."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.views.generic import TemplateView

from apps.accounts.models import GOVERNANCE_ROLES
from apps.accounts.permissions import RoleRequiredMixin
from apps.core.errors import DomainError, NotFound
from apps.monitoring.models import AlertSeverity, AlertStatus
from apps.monitoring.rules import rule_title
from apps.monitoring.selectors import alert_counts, alert_get, alert_list
from apps.monitoring.services import (
    alert_acknowledge,
    alert_dismiss,
    alert_escalate,
    alert_suspend_reveals,
)

PAGE_LIMIT = 200


def _status_filter(value: str | None) -> str:
    return value if value in AlertStatus.values else ""


def _severity_filter(value: str | None) -> str:
    return value if value in AlertSeverity.values else ""


class AlertListView(RoleRequiredMixin, TemplateView):
    allowed_roles = GOVERNANCE_ROLES
    template_name = "monitoring/alerts.html"

    def get_context_data(self, errors=None, **kwargs):
        context = super().get_context_data(**kwargs)
        status = _status_filter(
            self.request.GET.get("status") or self.request.POST.get("status_filter")
        )
        severity = _severity_filter(self.request.GET.get("severity"))
        alerts = list(alert_list(status=status, severity=severity)[:PAGE_LIMIT])
        errors = errors or {}
        for alert in alerts:
            alert.title = rule_title(alert.rule)
            alert.error = errors.get(alert.pk, "")
        counts = alert_counts(status=status)
        context.update(
            alerts=alerts,
            status=status,
            severity=severity,
            status_counts=[
                (value, label, counts["status"][value])
                for value, label in AlertStatus.choices
            ],
            severity_counts=[
                (value, label, counts["severity"][value])
                for value, label in AlertSeverity.choices
            ],
            total=sum(counts["status"].values()),
            limit=PAGE_LIMIT,
        )
        return context


class AlertActionView(AlertListView):
    """POST only: one handling action on one alert, then back to the list."""

    http_method_names = ["post"]
    actions = {
        "acknowledge": "Acknowledged (audited).",
        "dismiss": "Dismissed (audited).",
        "escalate": "Escalated: incident registered (audited).",
        "suspend": "Open reveals suspended (audited).",
    }

    def post(self, request, alert_id: int, action: str):
        if action not in self.actions:
            raise Http404("Unknown action.")
        try:
            alert = alert_get(alert_id=alert_id)
        except NotFound as exc:
            raise Http404(str(exc)) from exc
        try:
            if action == "acknowledge":
                alert_acknowledge(actor=request.user, alert=alert)
            elif action == "dismiss":
                alert_dismiss(
                    actor=request.user,
                    alert=alert,
                    reason=request.POST.get("reason", ""),
                )
            elif action == "escalate":
                alert_escalate(actor=request.user, alert=alert)
            else:
                count = alert_suspend_reveals(actor=request.user, alert=alert)
                messages.success(
                    request, f"{count} open reveal(s) suspended (audited)."
                )
        except DomainError as exc:
            return self.render_to_response(
                self.get_context_data(errors={alert.pk: exc.message}),
                status=exc.status if exc.status != 404 else 400,
            )
        if action != "suspend":
            messages.success(request, self.actions[action])
        url = reverse("monitoring:list")
        status = _status_filter(request.POST.get("status_filter"))
        return redirect(f"{url}?status={status}" if status else url)
