"""The customer's self-service pages under /me/ (consents, "My data", notices about
their data), and the public unsubscribe and confirmation pages. They work without
JavaScript, and reach each app's data through its selectors and services."""

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import translation
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
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
    purpose_text,
)
from apps.consent.services import (
    OptInLinkState,
    consent_apply_gpc,
    consent_grant,
    consent_withdraw,
    evidence_hash,
    notice_acknowledge,
    opt_in_confirm,
    opt_in_language,
    opt_in_link_state,
    unsubscribe,
    unsubscribe_resolve,
)
from apps.core.errors import DomainError
from apps.core.forms import form_add_domain_error
from apps.core.i18n import language_codes
from apps.customers.registry import PII_BY_NAME
from apps.customers.selectors import customer_language, customer_masked
from apps.customers.services import customer_language_set
from apps.incidents.selectors import (
    incident_get,
    notices_for_customer,
    remedy_offers_for_customer,
)
from apps.incidents.services import remedy_redeem
from apps.inventory.selectors import change_notice_list, recipient_list, system_list
from apps.portal.forms import CustomerLoginForm, CustomerPasswordResetForm
from apps.portal.language import SESSION_LANGUAGE, language_remember
from apps.portal.selectors import access_history_grouped
from apps.portal.templatetags.portal_text import name_in_sentence
from apps.requests.forms import CustomerRequestForm
from apps.requests.models import RequestStatus
from apps.requests.selectors import (
    erasure_backups_statement,
    request_get,
    requests_for_customer,
)
from apps.requests.services import export_download, export_token, request_open


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
        if request.session.get(SESSION_LANGUAGE, "") != self.customer.language:
            # Saved elsewhere (or before this session kept it): from now on.
            language_remember(request, self.customer.language)
            if self.customer.language:
                translation.activate(self.customer.language)
                request.LANGUAGE_CODE = self.customer.language
        if self.customer.is_erased:
            backups = erasure_backups_statement(customer=self.customer).text
            logout(request)
            messages.info(
                request,
                _("Your data was erased and your account is closed. %(backups)s")
                % {"backups": backups},
            )
            return redirect("portal:login")
        if sends_gpc(request) and consent_apply_gpc(
            customer=self.customer, evidence=request_evidence(request)
        ):
            messages.info(
                request,
                _(
                    "Your browser sent a Global Privacy Control signal, so we stopped "
                    "sharing your data with partners."
                ),
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
        customer = getattr(form.user, "customer", None)
        chosen = self.request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if (
            customer is not None
            and not customer.is_erased
            and chosen in language_codes()
            and chosen != customer.language
        ):
            # Picked with the switcher before signing in: their choice from now on.
            customer_language_set(customer=customer, language=chosen)
        language_remember(self.request, customer.language if customer else "")
        target = self.request.POST.get("next") or self.request.GET.get("next")
        if target and target.startswith("/me/"):
            return redirect(target)
        return redirect("portal:consents")


class CustomerLogoutView(View):
    def post(self, request):
        logout(request)
        messages.success(request, _("You are signed out."))
        return redirect("portal:login")


class LanguageView(View):
    """The language switcher on every customer page: a plain form (no JavaScript).
    Saved on the signed-in customer, and in Django's language cookie for everyone;
    then back to the page it was sent from."""

    def post(self, request):
        code = request.POST.get("language", "")
        if code not in language_codes():
            return HttpResponseBadRequest(_("That language is not offered."))
        user = request.user
        if user.is_authenticated and user.role == Role.CUSTOMER:
            customer = getattr(user, "customer", None)
            if customer is not None and not customer.is_erased:
                customer_language_set(customer=customer, language=code)
                language_remember(request, code)
        target = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(
            target,
            allowed_hosts={request.get_host()},
            require_https=request.is_secure(),
        ):
            target = reverse("portal:consents")
        response = redirect(target)
        response.set_cookie(
            settings.LANGUAGE_COOKIE_NAME,
            code,
            max_age=settings.LANGUAGE_COOKIE_AGE or 365 * 24 * 3600,
            path=settings.LANGUAGE_COOKIE_PATH,
            domain=settings.LANGUAGE_COOKIE_DOMAIN,
            secure=settings.LANGUAGE_COOKIE_SECURE,
            httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
            samesite=settings.LANGUAGE_COOKIE_SAMESITE,
        )
        return response


class ConsentsView(CustomerPageMixin, TemplateView):
    template_name = "portal/consents.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        purposes = consent_overview_for_customer(customer=self.customer)
        context.update(
            purposes=purposes,
            # The switches' confirmations this page shows next to them (base.html
            # shows any other at the top).
            inline_tags=[f"inline purpose-{item.purpose.code}" for item in purposes],
            history=consent_history_for_customer(customer=self.customer)[:50],
            notice=notice_current(),
            gpc=sends_gpc(self.request),
        )
        return context


class ConsentToggleView(CustomerPageMixin, View):
    """One click: switch one purpose on or off, effective at once. Back to the
    purpose's own place on the page, its confirmation next to it (on a phone, the
    top of the page is far above)."""

    def post(self, request, code: str):
        purpose = purpose_get_active(code=code)
        if purpose is None:
            messages.error(request, _("That choice no longer exists."))
            return redirect("portal:consents")
        text = purpose_text(purpose, translation.get_language())
        name = text.name
        inline = f"inline purpose-{code}"
        back = reverse("portal:consents") + f"#purpose-{code}"
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
            messages.error(request, exc.message, extra_tags=inline)
            return redirect(back)
        if isinstance(result, OptInRequest):
            messages.info(
                request,
                _("Check your inbox for the link that confirms %(name)s.")
                % {"name": name_in_sentence(text)},
                extra_tags=inline,
            )
        elif turn_on:
            messages.success(
                request, _("%(name)s is now on.") % {"name": name}, extra_tags=inline
            )
        else:
            messages.success(
                request, _("%(name)s is now off.") % {"name": name}, extra_tags=inline
            )
        return redirect(back)


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
        messages.success(request, _("Thank you. Please check your choices below."))
        return redirect("portal:consents")


def _language_of_the_email(request, code: str | None) -> None:
    """A page an email links to is in the language the email was written in (`code`,
    known from the link's token; None for a link that is not valid); unless the
    visitor chose one themselves (the switcher's cookie, or a signed-in customer's
    saved choice), which wins."""
    if code not in language_codes():
        return
    if request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME) in language_codes():
        return
    if request.session.get(SESSION_LANGUAGE) in language_codes():
        return
    translation.activate(code)
    request.LANGUAGE_CODE = code


# A link whose choice is recorded (the page says so, with no button), and links that
# can no longer confirm it (the page says why, with no button).
_OPT_IN_DONE = (OptInLinkState.USED, OptInLinkState.CONFIRMED_ELSEWHERE)
_OPT_IN_UNUSABLE = (OptInLinkState.REPLACED, OptInLinkState.EXPIRED)


class OptInConfirmView(View):
    """The link from the double opt-in email: a page with one button (mail scanners
    follow links, but do not press buttons)."""

    def dispatch(self, request, *args, **kwargs):
        _language_of_the_email(request, opt_in_language(token=kwargs["token"]))
        return super().dispatch(request, *args, **kwargs)

    def get(self, request, token: str):
        state = opt_in_link_state(token=token)
        if state in _OPT_IN_DONE or state in _OPT_IN_UNUSABLE:
            return self._closed(request, state)
        return render(request, "portal/opt_in.html", {"token": token})

    def post(self, request, token: str):
        try:
            event = opt_in_confirm(token=token, evidence=request_evidence(request))
        except ConsentError as exc:
            state = opt_in_link_state(token=token)  # pressed twice, two tabs, ...
            if state in _OPT_IN_DONE or state in _OPT_IN_UNUSABLE:
                return self._closed(request, state, status=exc.status)
            return render(
                request, "portal/opt_in.html", {"error": exc.message}, status=exc.status
            )
        return render(request, "portal/opt_in.html", {"confirmed": event.purpose})

    @staticmethod
    def _closed(request, state: str, status: int = 200):
        if state in _OPT_IN_DONE:
            return render(request, "portal/opt_in.html", {"already": state})
        if state == OptInLinkState.REPLACED:
            error = _(
                "A newer confirmation link was sent after this one: use the link in "
                "the latest email, or ask for a new one on your privacy page."
            )
        else:
            error = _("This confirmation link has expired. Ask for a new one.")
        return render(request, "portal/opt_in.html", {"error": error}, status=status)


class MyDataView(CustomerPageMixin, TemplateView):
    """What is held (masked), where, who receives it, who looked, my requests."""

    template_name = "portal/my_data.html"

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
            looks=access_history_grouped(customer=customer),
            requests=[
                (r, export_token(r) if r.export_blob is not None else None)
                for r in requests_for_customer(customer=customer)
            ],
            changes=change_notice_list(limit=10),
            form=form or CustomerRequestForm(),
            inline_tags=[INLINE_REQUEST],
            # What an erasure now would mean for the copies in backups (an erased
            # customer's certificate keeps what was true at their erasure).
            erasure_backups=erasure_backups_statement(
                customer=customer, prospective=True
            ).text,
        )
        return context

    def post(self, request):
        form = CustomerRequestForm(request.POST)
        if form.is_valid():
            try:
                opened = request_open(
                    actor=request.user,
                    customer=self.customer,
                    evidence=request_evidence(request),
                    **form.cleaned_data,
                )
            except DomainError as exc:
                form_add_domain_error(form, exc)
            else:
                # Some are done at once (a copy of the data, without a task queue):
                # the message says what is true now.
                # Shown at the top of the requests, where the redirect lands (on a
                # phone, the page's top is far above).
                messages.success(
                    request,
                    request_opened_message(opened.pk),
                    extra_tags=INLINE_REQUEST,
                )
                return redirect(reverse("portal:data") + "#request-message")
        return self.render_to_response(self.get_context_data(form=form), status=400)


# The tag of the message a request just sent gets: My data shows it with the requests.
INLINE_REQUEST = "inline request"


def request_opened_message(request_id) -> str:
    opened = request_get(request_id=request_id)
    if opened.status == RequestStatus.COMPLETED:
        if opened.export_blob is not None:
            return _("Your request is done: download your data below.")
        return _("Your request is done: the outcome is shown below.")
    if opened.status == RequestStatus.REFUSED:
        return _("Your request was refused: the reason is shown below.")
    return _("Your request is recorded. We will answer by the date shown.")


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
            return render(request, "portal/download_ready.html")
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


class MyNoticesView(CustomerPageMixin, TemplateView):
    """What the customer was told about incidents involving their data, and the
    remedies offered to them."""

    template_name = "portal/my_notices.html"
    review_exempt = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            notices=list(notices_for_customer(customer_id=self.customer.pk)),
            offers=remedy_offers_for_customer(customer_id=self.customer.pk),
        )
        return context

    def post(self, request):
        try:
            incident = incident_get(incident_id=request.POST.get("incident", ""))
            remedy_redeem(customer_id=self.customer.pk, incident=incident)
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, _("Marked as redeemed."))
        return redirect("portal:notices")


@method_decorator(csrf_exempt, name="dispatch")
class UnsubscribeView(View):
    """RFC 8058 one-click unsubscribe: GET shows one button; POST withdraws with no
    sign-in and no CSRF token (mail providers POST `List-Unsubscribe=One-Click`)."""

    def dispatch(self, request, *args, **kwargs):
        try:
            customer, _purpose = unsubscribe_resolve(token=kwargs["token"])
        except ConsentError:
            language = None  # the page says the link is not valid
        else:
            # The business's own systems send the email this link is in (the
            # audience API hands them the link): the customer's language is the
            # best Amanah knows of it.
            language = customer_language(customer)
        _language_of_the_email(request, language)
        return super().dispatch(request, *args, **kwargs)

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
