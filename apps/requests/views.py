"""The privacy admins' request queue and request pages. (The customer's "My data"
page is in the portal.)"""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.urls import reverse
from django.views.generic import TemplateView

from apps.access.selectors import customer_exists
from apps.accounts.models import GOVERNANCE_ROLES, Role
from apps.accounts.permissions import RoleRequiredMixin
from apps.core.errors import DomainError, NotFound
from apps.core.forms import form_add_domain_error
from apps.requests.forms import StaffRequestForm, TransitionForm
from apps.requests.selectors import (
    DUE_FILTERS,
    request_get,
    request_passed_on,
    request_queue,
    request_queue_due,
)
from apps.requests.services import (
    due_rule_of,
    request_details_read,
    request_handle,
    request_open,
)


class RequestQueueView(RoleRequiredMixin, TemplateView):
    allowed_roles = GOVERNANCE_ROLES
    template_name = "requests/queue.html"

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        due = self.request.GET.get("due", "")
        if due in DUE_FILTERS:
            requests = request_queue_due(due=due)
        else:
            due = ""
            requests = request_queue(include_closed=self.request.GET.get("all") == "1")
        context.update(
            requests=requests[:300],
            due=due,
            due_label=DUE_FILTERS.get(due, ""),
            form=form or StaffRequestForm(),
        )
        return context

    def post(self, request):
        """Staff open a request on a customer's behalf, after verifying identity."""
        if request.user.role != Role.PRIVACY_ADMIN:
            raise Http404
        form = StaffRequestForm(request.POST)
        if form.is_valid():
            data = dict(form.cleaned_data)
            try:
                customer = customer_exists(customer_id=data.pop("customer"))
                request_open(actor=request.user, customer=customer, **data)
            except DomainError as exc:
                form_add_domain_error(form, exc)
            else:
                messages.success(request, "Request opened.")
                return redirect("requests:queue")
        return self.render_to_response(self.get_context_data(form=form), status=400)


class RequestDetailView(RoleRequiredMixin, TemplateView):
    allowed_roles = GOVERNANCE_ROLES
    template_name = "requests/detail.html"

    def get_object(self):
        try:
            return request_get(request_id=self.kwargs["request_id"])
        except NotFound as exc:
            raise Http404(str(exc)) from exc

    @staticmethod
    def extension_offered(item) -> str:
        """The extension the page offers: its text while the request's rule allows
        one and it is unused, else ""."""
        rule = due_rule_of(regime=item.regime)
        return "" if rule.extension is None or item.extended else rule.extension_text

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        item = self.get_object()
        context.update(
            item=item,
            # Sealed under the customer's key; opening it is a logged read.
            details=request_details_read(actor=self.request.user, request=item),
            due_rule=due_rule_of(regime=item.regime),
            passed_on=request_passed_on(request=item),
            form=form or TransitionForm(extension=self.extension_offered(item)),
            # The customer's staff page: every role here (governance) sees any
            # customer there; none once disposal deleted the row.
            customer_url=reverse("staff:customer", args=[item.customer_id])
            if item.customer_id and self.request.user.role in GOVERNANCE_ROLES
            else "",
        )
        return context

    def post(self, request, request_id):
        item = self.get_object()
        form = TransitionForm(request.POST, extension=self.extension_offered(item))
        if form.is_valid():
            data = form.cleaned_data
            try:
                # Both when both are asked for, in one transaction.
                request_handle(
                    actor=request.user,
                    request=item,
                    status=data["status"],
                    note=data["note"],
                    extend=data.get("extend", False),
                )
            except DomainError as exc:
                form_add_domain_error(form, exc)
            else:
                messages.success(request, "Saved (audited).")
                return redirect("requests:detail", request_id=item.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)
