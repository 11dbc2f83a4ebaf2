"""The customer's self-service pages under /me/, and the public unsubscribe and
confirmation pages. They work without JavaScript."""

import json

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import FormView, TemplateView

from apps.accounts.models import Role
from apps.accounts.network import client_address
from apps.accounts.permissions import SignInRequiredMixin
from apps.consent.errors import ConsentError
from apps.consent.models import OptInRequest
from apps.consent.selectors import (
    consent_history_for_customer,
    consent_overview_for_customer,
    consent_receipts_for_customer,
    notice_current,
    notice_pending_review,
    purpose_get_active,
)
from apps.consent.services import (
    consent_apply_gpc,
    consent_grant,
    consent_withdraw,
    evidence_hash,
    notice_acknowledge,
    opt_in_confirm,
    unsubscribe,
    unsubscribe_resolve,
)
from apps.portal.forms import CustomerLoginForm, CustomerPasswordResetForm


def request_evidence(request) -> str:
    return evidence_hash(
        ip=client_address(request),
        user_agent=request.headers.get("User-Agent", ""),
    )


def sends_gpc(request) -> bool:
    return request.headers.get("Sec-GPC", "").strip() == "1"


class CustomerPageMixin(SignInRequiredMixin):
    """A page for a signed-in customer. Honours Global Privacy Control and, before
    anything else, asks for a review of a materially changed privacy notice."""

    login_url = reverse_lazy("portal:login")
    review_exempt = False

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if request.user.role != Role.CUSTOMER or not hasattr(request.user, "customer"):
            raise PermissionDenied
        self.customer = request.user.customer
        if self.customer.is_erased:
            logout(request)
            messages.info(request, "Your data was erased and your account is closed.")
            return redirect("portal:login")
        if sends_gpc(request) and consent_apply_gpc(
            customer=self.customer, evidence=request_evidence(request)
        ):
            messages.info(
                request,
                "Your browser sent a Global Privacy Control signal, so we stopped "
                "sharing your data with partners.",
            )
        if not self.review_exempt and notice_pending_review(customer=self.customer):
            return redirect("portal:notice")
        return super().dispatch(request, *args, **kwargs)


class CustomerLoginView(FormView):
    template_name = "portal/login.html"
    form_class = CustomerLoginForm

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["request"] = self.request
        return kwargs

    def form_valid(self, form):
        login(self.request, form.user)
        target = self.request.POST.get("next") or self.request.GET.get("next")
        if target and target.startswith("/me/"):
            return redirect(target)
        return redirect("portal:consents")


class CustomerLogoutView(View):
    def post(self, request):
        logout(request)
        messages.success(request, "You are signed out.")
        return redirect("portal:login")


class ConsentsView(CustomerPageMixin, TemplateView):
    template_name = "portal/consents.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            purposes=consent_overview_for_customer(customer=self.customer),
            history=consent_history_for_customer(customer=self.customer)[:50],
            notice=notice_current(),
            gpc=sends_gpc(self.request),
        )
        return context


class ConsentToggleView(CustomerPageMixin, View):
    """One click: switch one purpose on or off, effective at once."""

    def post(self, request, code: str):
        purpose = purpose_get_active(code=code)
        if purpose is None:
            messages.error(request, "That choice no longer exists.")
            return redirect("portal:consents")
        turn_on = request.POST.get("granted") == "1"
        change = consent_grant if turn_on else consent_withdraw
        try:
            result = change(
                actor=request.user,
                customer=self.customer,
                purpose_code=code,
                source="self_service",
                evidence=request_evidence(request),
            )
        except ConsentError as exc:
            messages.error(request, exc.message)
            return redirect("portal:consents")
        if isinstance(result, OptInRequest):
            messages.info(
                request,
                f"Check your inbox for the link that confirms {purpose.name.lower()}.",
            )
        else:
            state = "on" if turn_on else "off"
            messages.success(request, f"{purpose.name} is now {state}.")
        return redirect(reverse("portal:consents") + f"#purpose-{code}")


class ReceiptsView(CustomerPageMixin, View):
    review_exempt = True

    def get(self, request):
        body = json.dumps(
            consent_receipts_for_customer(customer=self.customer), indent=2
        )
        response = HttpResponse(body, content_type="application/json")
        response["Content-Disposition"] = 'attachment; filename="consent-receipts.json"'
        return response


class NoticeReviewView(CustomerPageMixin, TemplateView):
    template_name = "portal/notice.html"
    review_exempt = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        notice = notice_pending_review(customer=self.customer) or notice_current()
        context.update(
            notice=notice,
            changes=notice.changes.select_related("purpose") if notice else [],
            purposes={
                p.purpose.pk: p
                for p in consent_overview_for_customer(customer=self.customer)
            },
        )
        return context

    def post(self, request):
        notice = notice_pending_review(customer=self.customer)
        if notice is not None:
            notice_acknowledge(customer=self.customer, notice=notice)
        messages.success(request, "Thank you. Please check your choices below.")
        return redirect("portal:consents")


class OptInConfirmView(View):
    """The link from the double opt-in email: a page with one button (mail scanners
    follow links, but do not press buttons)."""

    def get(self, request, token: str):
        return render(request, "portal/opt_in.html", {"token": token})

    def post(self, request, token: str):
        try:
            event = opt_in_confirm(token=token, evidence=request_evidence(request))
        except ConsentError as exc:
            return render(
                request, "portal/opt_in.html", {"error": exc.message}, status=exc.status
            )
        return render(request, "portal/opt_in.html", {"confirmed": event.purpose})


@method_decorator(csrf_exempt, name="dispatch")
class UnsubscribeView(View):
    """RFC 8058 one-click unsubscribe: GET shows one button; POST withdraws with no
    sign-in and no CSRF token (mail providers POST `List-Unsubscribe=One-Click`)."""

    def get(self, request, token: str):
        try:
            _, purpose = unsubscribe_resolve(token=token)
        except ConsentError as exc:
            return render(
                request, "portal/unsubscribe.html", {"error": exc.message}, status=400
            )
        return render(request, "portal/unsubscribe.html", {"purpose": purpose})

    def post(self, request, token: str):
        try:
            purpose, changed = unsubscribe(
                token=token, evidence=request_evidence(request)
            )
        except ConsentError as exc:
            return render(
                request, "portal/unsubscribe.html", {"error": exc.message}, status=400
            )
        return render(
            request,
            "portal/unsubscribe.html",
            {"purpose": purpose, "done": True, "changed": changed},
        )


class PasswordResetView(auth_views.PasswordResetView):
    form_class = CustomerPasswordResetForm
    template_name = "portal/password_reset.html"
    success_url = reverse_lazy("portal:password-reset-done")


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "portal/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "portal/password_reset_confirm.html"
    success_url = reverse_lazy("portal:password-reset-complete")


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "portal/password_reset_complete.html"
