"""The customer's "My data" page and requests; the privacy admins' request queue; the
inventory pages."""

from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views import View
from django.views.generic import TemplateView

from apps.access.selectors import customer_exists
from apps.accounts.models import GOVERNANCE_ROLES, Role
from apps.accounts.permissions import RoleRequiredMixin
from apps.consent.selectors import consent_overview_for_customer
from apps.core.errors import DomainError, NotFound
from apps.core.forms import form_add_domain_error
from apps.customers.registry import PII_BY_NAME
from apps.customers.selectors import customer_masked
from apps.inventory.selectors import change_notice_list, recipient_list, system_list
from apps.portal.views import CustomerPageMixin
from apps.requests.export import access_history
from apps.requests.forms import CustomerRequestForm, StaffRequestForm, TransitionForm
from apps.requests.selectors import request_get, request_queue, requests_for_customer
from apps.requests.services import (
    export_download,
    export_token,
    request_details_read,
    request_extend,
    request_open,
    request_transition,
)


class MyDataView(CustomerPageMixin, TemplateView):
    """What is held (masked), where, who receives it, who looked, my requests."""

    template_name = "requests/my_data.html"

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        customer = self.customer
        masked = customer_masked(customer)
        held = [
            (PII_BY_NAME[name].label, value)
            for name, value in masked.items()
            if name in PII_BY_NAME and value is not None
        ]
        categories = {
            PII_BY_NAME[name].category
            for name, value in masked.items()
            if name in PII_BY_NAME and value is not None
        }
        granted = {
            v.purpose.pk
            for v in consent_overview_for_customer(customer=customer)
            if v.granted
        }
        recipients = [
            (r, not r.gating_purpose_id or r.gating_purpose_id in granted)
            for r in recipient_list()
            if categories & set(r.data_categories)
        ]
        context.update(
            held=held,
            systems=[s for s in system_list() if categories & set(s.data_categories)],
            recipients=recipients,
            looks=list(access_history(customer=customer))[:100],
            requests=[
                (r, export_token(r) if r.export_blob is not None else None)
                for r in requests_for_customer(customer=customer)
            ],
            changes=change_notice_list(limit=10),
            form=form or CustomerRequestForm(),
        )
        return context

    def post(self, request):
        form = CustomerRequestForm(request.POST)
        if form.is_valid():
            try:
                request_open(
                    actor=request.user, customer=self.customer, **form.cleaned_data
                )
            except DomainError as exc:
                form_add_domain_error(form, exc)
            else:
                messages.success(
                    request,
                    "Your request is recorded. We will answer by the date shown.",
                )
                return redirect("portal:data")
        return self.render_to_response(self.get_context_data(form=form), status=400)


# The token of a download link opened before signing in, kept in the session (on the
# server) until sign-in comes back to the tokenless continue path.
_PENDING_DOWNLOAD = "amanah_pending_download"


class ExportDownloadView(CustomerPageMixin, View):
    """The export's download link (`<token>`), and the path sign-in comes back to
    (no token in it: the one kept in the session). There a page offers the download
    with a button: a download answering the sign-in itself would leave the browser
    on the sign-in form, as if it had failed."""

    review_exempt = True

    @staticmethod
    def sign_in_next(request, token: str) -> str:
        """Keep the token server-side and come back without it (sign_in_next)."""
        request.session[_PENDING_DOWNLOAD] = token
        return reverse("portal:request-download-pending")

    def get(self, request, token: str | None = None):
        if token is None:
            if _PENDING_DOWNLOAD not in request.session:
                return redirect("portal:data")
            return render(request, "requests/download_ready.html")
        return self._download(request, token)

    def post(self, request, token: str | None = None):
        """The button of the page sign-in came back to (a link's own path downloads
        by GET)."""
        if token is not None:
            return HttpResponseNotAllowed(["GET"])
        token = request.session.pop(_PENDING_DOWNLOAD, None)
        if token is None:
            return redirect("portal:data")
        return self._download(request, token)

    def _download(self, request, token: str) -> HttpResponse:
        try:
            _, data = export_download(token=token, customer=self.customer)
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect("portal:data")
        response = HttpResponse(data, content_type="application/zip")
        response["Content-Disposition"] = 'attachment; filename="my-data.zip"'
        return response


class RequestQueueView(RoleRequiredMixin, TemplateView):
    allowed_roles = GOVERNANCE_ROLES
    template_name = "requests/queue.html"

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            requests=request_queue(include_closed=self.request.GET.get("all") == "1")[
                :300
            ],
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

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        item = self.get_object()
        context.update(
            item=item,
            # Sealed under the customer's key; opening it is a logged read.
            details=request_details_read(actor=self.request.user, request=item),
            form=form or TransitionForm(),
        )
        return context

    def post(self, request, request_id):
        item = self.get_object()
        form = TransitionForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                if data["extend"]:
                    request_extend(
                        actor=request.user, request=item, reason=data["note"]
                    )
                else:
                    request_transition(
                        actor=request.user,
                        request=item,
                        status=data["status"],
                        note=data["note"],
                    )
            except DomainError as exc:
                form_add_domain_error(form, exc)
            else:
                messages.success(request, "Saved (audited).")
                return redirect("requests:detail", request_id=item.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)
