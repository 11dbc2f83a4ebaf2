"""Incident pages for compliance officers and privacy admins; the public status page
and its JSON feed. (The customer's "notices about your data" is in the portal.)"""

from django.conf import settings
from django.contrib import messages
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from apps.accounts.models import GOVERNANCE_ROLES
from apps.accounts.permissions import RoleRequiredMixin
from apps.core.errors import DomainError, NotFound
from apps.core.forms import form_add_domain_error
from apps.incidents.forms import (
    AffectedForm,
    IncidentForm,
    IncidentTextForm,
    NotifiedForm,
    ReportForm,
    ReportSendForm,
    StatusUpdateForm,
    TimelineForm,
    TransitionForm,
)
from apps.incidents.models import AffectedCustomer, Audience, Incident
from apps.incidents.reports import authority_report_get
from apps.incidents.selectors import (
    OPEN,
    affected_counts,
    affected_erased_counts,
    deadlines_for,
    incident_erasure_cutoff,
    incident_get,
    incident_list,
    incident_text_get,
    incident_text_list,
    notification_progress,
    status_components,
    status_components_shown,
    status_updates_published,
    status_updates_shown,
)
from apps.incidents.services import (
    affected_select,
    authority_report_save,
    authority_report_send,
    deadline_notified_record,
    incident_create,
    incident_notify,
    incident_text_save,
    incident_transition,
    incident_update,
    status_publish,
    timeline_add,
)


class IncidentListView(RoleRequiredMixin, TemplateView):
    allowed_roles = GOVERNANCE_ROLES
    template_name = "incidents/list.html"

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        open_only = self.request.GET.get("status") == "open"
        context.update(
            incidents=incident_list(open_only=open_only)[:200],
            open_only=open_only,
            form=form or IncidentForm(),
        )
        return context

    def post(self, request):
        form = IncidentForm(request.POST)
        if form.is_valid():
            try:
                incident = incident_create(actor=request.user, data=form.service_data())
            except DomainError as exc:
                form_add_domain_error(form, exc)
            else:
                messages.success(request, "Incident registered (audited).")
                return redirect("incidents:detail", incident_id=incident.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class IncidentDetailView(RoleRequiredMixin, TemplateView):
    allowed_roles = GOVERNANCE_ROLES
    template_name = "incidents/detail.html"

    def incident(self) -> Incident:
        try:
            return incident_get(incident_id=self.kwargs["incident_id"])
        except NotFound as exc:
            raise Http404(str(exc)) from exc

    def get_context_data(self, forms=None, **kwargs):
        context = super().get_context_data(**kwargs)
        incident = self.incident()
        counts = affected_counts(incident=incident)
        forms = forms or {}
        remedies = AffectedCustomer.objects.filter(incident=incident).exclude(
            remedy_code=""
        )
        deadlines = deadlines_for(incident=incident)
        failed = forms.get("notified")
        failed_rule = failed.prefix if failed is not None else None
        rows = [
            (
                d,
                failed
                if d.rule_code == failed_rule
                else NotifiedForm(
                    initial={"rule": d.rule_code, "audience": d.audience},
                    prefix=d.rule_code,
                ),
            )
            for d in deadlines
        ]
        owed = [d for d in deadlines if d.status == OPEN and not d.exempt]
        failed_text = forms.get("text_edit")
        text_forms = [
            failed_text
            if failed_text is not None and failed_text.instance.pk == text.pk
            else IncidentTextForm(instance=text, prefix=f"text-{text.language}")
            for text in incident_text_list(incident=incident)
        ]
        context.update(
            incident=incident,
            deadlines=deadlines,
            deadline_rows=rows,
            nearest=owed[0] if owed else None,
            overdue=sum(d.missed for d in owed),
            audience_authority=Audience.AUTHORITY,
            counts=sorted(counts.items(), key=lambda kv: -kv[1]),
            affected_total=sum(counts.values()),
            erased=affected_erased_counts(incident=incident),
            erasure_cutoff=incident_erasure_cutoff(incident),
            progress=notification_progress(incident=incident),
            timeline=incident.timeline.select_related("author"),
            updates=incident.status_updates.prefetch_related("texts").order_by(
                "-published_at"
            ),
            remedies_offered=remedies.count(),
            remedies_redeemed=remedies.filter(remedy_redeemed_at__isnull=False).count(),
            edit_form=forms.get("edit") or IncidentForm(instance=incident),
            transition_form=forms.get("transition") or TransitionForm(),
            timeline_form=forms.get("timeline") or TimelineForm(),
            affected_form=forms.get("affected")
            or AffectedForm(initial={"scope": "all"}),
            status_form=forms.get("status") or StatusUpdateForm(),
            text_forms=text_forms,
            text_add_form=forms.get("text_add") or IncidentTextForm(prefix="text-new"),
            components=status_components(),
        )
        return context

    def post(self, request, incident_id):
        incident = self.incident()
        action = request.POST.get("action", "")
        handler = getattr(self, f"_do_{action}", None)
        if handler is None:
            messages.error(request, "Unknown action.")
            return redirect("incidents:detail", incident_id=incident.pk)
        form_name, form = handler(request, incident)
        if form is None:
            # Back at the top, where the message is (a form's action names its
            # section, which a redirect would otherwise keep).
            return redirect(
                reverse("incidents:detail", kwargs={"incident_id": incident.pk})
                + "#main"
            )
        return self.render_to_response(
            self.get_context_data(forms={form_name: form}), status=400
        )

    def _run(self, request, form, call, done: str):
        if form.is_valid():
            try:
                call(form)
            except DomainError as exc:
                form_add_domain_error(form, exc)
                return form
            messages.success(request, done)
            return None
        return form

    def _do_edit(self, request, incident):
        form = IncidentForm(request.POST, instance=Incident.objects.get(pk=incident.pk))
        return "edit", self._run(
            request,
            form,
            lambda f: incident_update(
                actor=request.user, incident=incident, data=f.service_data()
            ),
            "Saved (audited).",
        )

    def _do_text_add(self, request, incident):
        form = IncidentTextForm(request.POST, prefix="text-new")
        return "text_add", self._run(
            request,
            form,
            lambda f: incident_text_save(
                actor=request.user,
                incident=incident,
                language=f.cleaned_data["language"],
                data=f.cleaned_data,
                create=True,
            ),
            "Language version added (audited).",
        )

    def _do_text_edit(self, request, incident):
        try:
            text = incident_text_get(
                incident=incident, language=request.POST.get("text_language", "")
            )
        except NotFound as exc:
            messages.error(request, exc.message)
            return "text_edit", None
        form = IncidentTextForm(
            request.POST, instance=text, prefix=f"text-{text.language}"
        )
        return "text_edit", self._run(
            request,
            form,
            lambda f: incident_text_save(
                actor=request.user,
                incident=incident,
                language=text.language,
                data=f.cleaned_data,
                create=False,
            ),
            "Language version saved (audited).",
        )

    def _do_transition(self, request, incident):
        return "transition", self._run(
            request,
            TransitionForm(request.POST),
            lambda f: incident_transition(
                actor=request.user, incident=incident, **f.cleaned_data
            ),
            "Status changed.",
        )

    def _do_timeline(self, request, incident):
        return "timeline", self._run(
            request,
            TimelineForm(request.POST),
            lambda f: timeline_add(
                actor=request.user, incident=incident, **f.cleaned_data
            ),
            "Added to the timeline.",
        )

    def _do_affected(self, request, incident):
        form = AffectedForm(request.POST, request.FILES)

        def call(f):
            data = f.cleaned_data
            ids = data["customer_ids"]
            if data.get("ids_file"):
                ids += "\n" + data["ids_file"].read(5_000_000).decode(
                    "utf-8", "replace"
                )
            count = affected_select(
                actor=request.user,
                incident=incident,
                scope=data["scope"],
                countries=AffectedForm.codes(data["countries"]),
                regions=AffectedForm.codes(data["regions"]),
                created_from=data["created_from"],
                created_to=data["created_to"],
                customer_ids=ids,
                mailbox_compromised=data["mailbox_compromised"],
            )
            messages.info(request, f"{count} customers affected.")

        return "affected", self._run(
            request, form, call, "Affected customers recorded."
        )

    def _do_notified(self, request, incident):
        # One form per deadline on the page, each under its rule's prefix.
        form = NotifiedForm(request.POST, prefix=request.POST.get("deadline", ""))
        return "notified", self._run(
            request,
            form,
            lambda f: deadline_notified_record(
                actor=request.user,
                incident=incident,
                rule_code=f.cleaned_data["rule"],
                audience=f.cleaned_data["audience"],
                notified_at=f.cleaned_data["notified_at"],
                recipient=f.cleaned_data["recipient"],
                reference=f.cleaned_data["reference"],
            ),
            "Notification recorded (audited).",
        )

    def _do_notify(self, request, incident):
        try:
            count = incident_notify(actor=request.user, incident=incident)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request, f"{count} new notices queued; sending what is due in batches."
            )
        return "notify", None

    def _do_status(self, request, incident):
        form = StatusUpdateForm(request.POST)

        def call(f):
            data = f.cleaned_data
            chosen = [int(c) for c in request.POST.getlist("components") if c.isdigit()]
            status_publish(
                actor=request.user,
                incident=incident,
                phase=data["phase"],
                message=data["message"],
                data_at_risk=data["data_at_risk"],
                components=dict.fromkeys(
                    chosen, data["component_state"] or "operational"
                ),
                texts=f.texts(),
            )

        return "status", self._run(request, form, call, "Published on the status page.")


class IncidentReportView(RoleRequiredMixin, TemplateView):
    """The report to one authority, drafted from the incident, editable until it is
    marked sent; printable (A4) as the PDF to send."""

    allowed_roles = GOVERNANCE_ROLES
    template_name = "incidents/report.html"

    def report(self):
        try:
            incident = incident_get(incident_id=self.kwargs["incident_id"])
            return authority_report_get(
                incident=incident, rule_code=self.kwargs["rule_code"]
            )
        except DomainError as exc:
            raise Http404(str(exc)) from exc

    def get_context_data(self, report=None, form=None, send_form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        report = report or self.report()
        context.update(
            report=report,
            incident=report.incident,
            deadline=report.deadline,
            form=form or ReportForm(sections=report.sections),
            send_form=send_form or ReportSendForm(),
            controller_set=bool(settings.AMANAH_CONTROLLER_NAME.strip()),
        )
        return context

    def post(self, request, incident_id, rule_code):
        report = self.report()
        form = ReportForm(request.POST, sections=report.sections)
        send_form = None
        if not form.is_valid():
            return self._again(report, form, send_form)
        try:
            if request.POST.get("action") == "send":
                send_form = ReportSendForm(request.POST)
                if not send_form.is_valid():
                    return self._again(report, form, send_form)
                authority_report_send(
                    actor=request.user,
                    incident=report.incident,
                    rule_code=rule_code,
                    sections=form.cleaned_data,
                    **send_form.cleaned_data,
                )
                messages.success(
                    request,
                    "Marked sent: the report is frozen, the notification recorded.",
                )
            else:
                authority_report_save(
                    actor=request.user,
                    incident=report.incident,
                    rule_code=rule_code,
                    sections=form.cleaned_data,
                )
                messages.success(request, "Report saved (audited).")
        except DomainError as exc:
            target = send_form if send_form is not None else form
            if exc.field in ("notified_at", "recipient", "reference"):
                form_add_domain_error(target, exc)
            else:
                form_add_domain_error(form, exc)
            return self._again(report, form, send_form)
        return redirect(
            "incidents:report", incident_id=incident_id, rule_code=rule_code
        )

    def _again(self, report, form, send_form):
        return self.render_to_response(
            self.get_context_data(report=report, form=form, send_form=send_form),
            status=400,
        )


class StatusPageView(TemplateView):
    """Public: components and plain-language incident updates."""

    template_name = "incidents/status.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            components=status_components_shown(), updates=status_updates_shown()
        )
        return context


class StatusFeedView(View):
    def get(self, request):
        return JsonResponse(
            {
                "components": [
                    {"name": c.name, "state": c.state} for c in status_components()
                ],
                "updates": [
                    {
                        "incident": u.incident.title,
                        "phase": u.phase,
                        "message": u.message,
                        # The update in more languages staff wrote it in.
                        "texts": {
                            t.language: {"title": t.title, "message": t.message}
                            for t in u.texts.all()
                        },
                        "data_at_risk": u.data_at_risk,
                        "components": [c.name for c in u.components.all()],
                        "published_at": u.published_at.isoformat(),
                    }
                    for u in status_updates_published()
                ],
            }
        )
