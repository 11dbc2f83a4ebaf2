"""Retention pages: the retention report (with a chart, CSV and JSON), policies,
legal holds; and the public data policy page generated from the enabled policies."""

import json

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.utils import translation
from django.views import View
from django.views.generic import TemplateView

from apps.access.selectors import customer_exists
from apps.accounts.models import GOVERNANCE_ROLES, Role
from apps.accounts.permissions import RoleRequiredMixin
from apps.consent.forms import translations_initial
from apps.consent.selectors import purpose_list_active
from apps.core.errors import DomainError
from apps.core.forms import form_add_domain_error
from apps.core.replica import replica_reads
from apps.retention.forms import HoldForm, PolicyForm
from apps.retention.management.commands.retention_report import report_csv
from apps.retention.models import POLICY_TEXT_FIELDS
from apps.retention.selectors import (
    disposed_per_month,
    hold_get,
    hold_list,
    policy_get,
    policy_list,
    policy_text,
    retention_report,
    run_list_recent,
)
from apps.retention.services import POLICY_FIELDS, hold_place, hold_release, policy_save

CHART_HEIGHT = 160
# Room above the tallest bar for its value label (11px text, drawn 4px above the bar)
# and below the axis for the month labels: nothing is cut off at the viewBox's edges.
CHART_TOP = 20
CHART_AXIS = CHART_TOP + CHART_HEIGHT
CHART_VIEW_HEIGHT = CHART_AXIS + 30


def _bars(months: list[dict]) -> list[dict]:
    peak = max((m["disposed"] for m in months), default=0) or 1
    bars = []
    for index, month in enumerate(months):
        height = round(CHART_HEIGHT * month["disposed"] / peak)
        bars.append(
            {
                **month,
                "x": 40 + index * 52,
                "y": CHART_AXIS - height,
                "height": height,
                "label": month["month"][2:].replace("-", "/"),
            }
        )
    return bars


class RetentionReportView(RoleRequiredMixin, TemplateView):
    allowed_roles = GOVERNANCE_ROLES
    template_name = "retention/report.html"

    def get(self, request, *args, **kwargs):
        fmt = request.GET.get("format")
        if fmt in ("csv", "json"):
            with replica_reads():
                report = retention_report()
            if fmt == "json":
                body, kind = json.dumps(report, indent=2), "application/json"
            else:
                body, kind = report_csv(report), "text/csv"
            response = HttpResponse(body, content_type=kind)
            response["Content-Disposition"] = (
                f'attachment; filename="retention-report.{fmt}"'
            )
            return response
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        with replica_reads():
            report = retention_report()
            months = disposed_per_month()
            runs = list(run_list_recent())
        context.update(
            report=report,
            bars=_bars(months),
            chart_width=40 + 52 * len(months),
            chart_height=CHART_VIEW_HEIGHT,
            chart_axis=CHART_AXIS,
            chart_ticks=CHART_AXIS + 18,
            chart_total=sum(m["disposed"] for m in months),
            peak=max((m["disposed"] for m in months), default=0),
            overdue_total=sum(p["overdue"] for p in report["policies"]),
            runs=runs,
            disposal_at=settings.AMANAH_DISPOSAL_AT,
        )
        return context


class PolicyListView(RoleRequiredMixin, TemplateView):
    allowed_roles = GOVERNANCE_ROLES
    template_name = "retention/policies.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["policies"] = policy_list()
        return context


class PolicyEditView(RoleRequiredMixin, TemplateView):
    allowed_roles = (Role.PRIVACY_ADMIN,)
    template_name = "retention/policy_edit.html"

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        code = self.kwargs.get("code")
        policy = policy_get(code=code) if code else None
        if code and policy is None:
            raise Http404("No such policy.")
        initial = {f: getattr(policy, f) for f in POLICY_FIELDS} if policy else {}
        if policy:
            initial.update(
                translations_initial(policy.translations, POLICY_TEXT_FIELDS)
            )
        context.update(policy=policy, form=form or PolicyForm(initial=initial))
        return context

    def post(self, request, code=None):
        form = PolicyForm(request.POST)
        new_code = code or request.POST.get("code", "").strip()
        if form.is_valid():
            if not new_code:
                form.add_error(None, "Give the policy a code.")
            else:
                try:
                    policy_save(
                        actor=request.user, code=new_code, data=form.cleaned_data
                    )
                except DomainError as exc:
                    form_add_domain_error(form, exc)
                else:
                    messages.success(request, f"Policy {new_code} saved (audited).")
                    return redirect("retention:policies")
        return self.render_to_response(self.get_context_data(form=form), status=400)


class HoldListView(RoleRequiredMixin, TemplateView):
    allowed_roles = GOVERNANCE_ROLES
    template_name = "retention/holds.html"

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(holds=hold_list(), form=form or HoldForm())
        return context

    def post(self, request):
        if request.user.role != Role.PRIVACY_ADMIN:
            messages.error(request, "Only privacy admins place legal holds.")
            return redirect("retention:holds")
        form = HoldForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                customer = (
                    customer_exists(customer_id=data["customer"])
                    if data["customer"]
                    else None
                )
                hold_place(
                    actor=request.user,
                    customer=customer,
                    covers=data["covers"],
                    reason=data["reason"],
                    ends_at=data["ends_at"],
                )
            except DomainError as exc:
                form_add_domain_error(form, exc)
            else:
                messages.success(request, "Legal hold placed (audited).")
                return redirect("retention:holds")
        return self.render_to_response(self.get_context_data(form=form), status=400)


class HoldReleaseView(RoleRequiredMixin, View):
    allowed_roles = (Role.PRIVACY_ADMIN,)

    def post(self, request, pk: int):
        hold = hold_get(hold_id=pk)
        if hold is None:
            raise Http404("No such hold.")
        try:
            hold_release(actor=request.user, hold=hold)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Legal hold released (audited).")
        return redirect("retention:holds")


class DataPolicyView(TemplateView):
    """Public: what we collect, why, for how long, and how it is disposed of."""

    template_name = "retention/data_policy.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        language = translation.get_language()
        context.update(
            policies=[
                (policy, policy_text(policy, language))
                for policy in policy_list(enabled_only=True)
            ],
            purposes=purpose_list_active(),
        )
        return context
