"""The compliance home (`/compliance/`): the cockpit, live counts of what needs
attention, each linking to its list (apps.compliance.selectors), and the way to every
other compliance task."""

import json

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.views import View
from django.views.generic import TemplateView

from apps.accounts.models import GOVERNANCE_ROLES, Role
from apps.accounts.permissions import RoleRequiredMixin
from apps.compliance.forms import ActivityForm
from apps.compliance.ropa import activity_get, ropa_csv, ropa_get, ropa_json
from apps.compliance.selectors import cockpit_get
from apps.compliance.services import activity_mark_reviewed, activity_save
from apps.core.errors import DomainError, NotFound
from apps.core.forms import form_add_domain_error
from apps.core.replica import replica_reads


class ComplianceHomeView(RoleRequiredMixin, TemplateView):
    allowed_roles = GOVERNANCE_ROLES
    template_name = "compliance/home.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        with replica_reads():
            context["cockpit"] = cockpit_get()
        return context


# The record of processing activities (GDPR art. 30) ------------------------------


def ropa_download(fmt: str) -> HttpResponse:
    """The record as a file: `csv` or `json`."""
    with replica_reads():
        entries = ropa_get()
    if fmt == "json":
        body, kind = json.dumps(ropa_json(entries), indent=2), "application/json"
    else:
        body, kind = ropa_csv(entries), "text/csv"
    response = HttpResponse(body, content_type=kind)
    response["Content-Disposition"] = f'attachment; filename="ropa.{fmt}"'
    return response


class RopaView(RoleRequiredMixin, TemplateView):
    """The record, one row per activity; CSV and JSON downloads; privacy admins edit
    an activity and mark it reviewed."""

    allowed_roles = GOVERNANCE_ROLES
    template_name = "compliance/ropa.html"

    def get(self, request, *args, **kwargs):
        fmt = request.GET.get("format")
        if fmt in ("csv", "json"):
            return ropa_download(fmt)
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        entries = ropa_get()
        context.update(
            entries=entries,
            never_count=sum(1 for e in entries if e.reviewed_at is None),
            stale_count=sum(
                1 for e in entries if e.review_due and e.reviewed_at is not None
            ),
            controller_country=settings.AMANAH_CONTROLLER_COUNTRY,
            can_edit=self.request.user.role == Role.PRIVACY_ADMIN,
        )
        return context


class RopaActivityEditView(RoleRequiredMixin, TemplateView):
    allowed_roles = (Role.PRIVACY_ADMIN,)
    template_name = "compliance/ropa_edit.html"

    def _activity(self):
        code = self.kwargs.get("code")
        activity = activity_get(code=code) if code else None
        if code and activity is None:
            raise Http404("No such processing activity.")
        return activity

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        activity = self._activity()
        initial = {}
        if activity is not None:
            initial = {
                "name": activity.name,
                "purpose": activity.purpose,
                "legal_basis": activity.legal_basis,
                "data_subjects": activity.data_subjects,
                "data_categories": activity.data_categories,
                "consent_purpose": activity.consent_purpose,
                "systems": list(activity.systems.all()),
                "recipients": list(activity.recipients.all()),
                "retention_policies": list(activity.retention_policies.all()),
                "owner": activity.owner,
            }
        context.update(activity=activity, form=form or ActivityForm(initial=initial))
        return context

    def post(self, request, code=None):
        activity = self._activity()
        form = ActivityForm(request.POST)
        new_code = code or request.POST.get("code", "").strip()
        if form.is_valid():
            if activity is None and activity_get(code=new_code):
                form.add_error(None, "Give the activity a new code.")
            else:
                try:
                    activity_save(
                        actor=request.user, code=new_code, data=form.service_data()
                    )
                except DomainError as exc:
                    form_add_domain_error(form, exc)
                else:
                    messages.success(request, f"Activity {new_code} saved (audited).")
                    return redirect("compliance:ropa")
        return self.render_to_response(self.get_context_data(form=form), status=400)


class RopaActivityReviewedView(RoleRequiredMixin, View):
    allowed_roles = (Role.PRIVACY_ADMIN,)

    def post(self, request, code: str):
        try:
            activity_mark_reviewed(actor=request.user, code=code)
        except NotFound as exc:
            raise Http404(str(exc)) from exc
        messages.success(request, f"Activity {code} marked reviewed (audited).")
        return redirect("compliance:ropa")
