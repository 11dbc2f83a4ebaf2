from django.core.paginator import Paginator
from django.views.generic import TemplateView

from apps.accounts.models import GOVERNANCE_ROLES
from apps.accounts.permissions import RoleRequiredMixin
from apps.audit.forms import AuditFilterForm
from apps.audit.models import ChainVerification
from apps.audit.selectors import (
    audit_action_list,
    audit_chain_verify,
    audit_event_list,
    audit_verification_last,
)
from apps.audit.services import chain_verification_record
from apps.core.db import advisory_session_lock

# One "Verify now" walk of the chain at a time (it reads every event).
CHAIN_CHECK_LOCK = "audit.chain_check"


class AuditEventListView(RoleRequiredMixin, TemplateView):
    allowed_roles = GOVERNANCE_ROLES
    template_name = "audit/event_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = AuditFilterForm(self.request.GET or None, actions=audit_action_list())
        filters = {}
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            filters = {
                "action": data["action"],
                "actor_username": data["actor"],
                "target_type": data["target_type"],
                "target_id": data["target_id"],
                "since": data["since"],
                "until": data["until"],
            }
        events = (
            audit_event_list(**filters)
            if not form.errors
            else audit_event_list().none()
        )
        page = Paginator(events, 50).get_page(self.request.GET.get("page"))
        query = self.request.GET.copy()
        query.pop("page", None)
        context.update(form=form, page=page, query=query.urlencode())
        return context


class AuditChainVerifyView(RoleRequiredMixin, TemplateView):
    """GET shows the last check of the chain; POST ("Verify now") walks it and
    records the outcome, as the nightly task and `verify_audit_chain` do; one walk
    at a time: a second click while one runs is told so and walks nothing."""

    allowed_roles = GOVERNANCE_ROLES
    template_name = "audit/verify.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["last"] = audit_verification_last()
        return context

    def post(self, request, *args, **kwargs):
        with advisory_session_lock(CHAIN_CHECK_LOCK) as got:
            if not got:
                return self.render_to_response(
                    self.get_context_data(busy=True), status=409
                )
            report = audit_chain_verify()
            chain_verification_record(
                report=report, source=ChainVerification.Source.PAGE
            )
        return self.render_to_response(self.get_context_data(report=report))
