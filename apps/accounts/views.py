from base64 import b32encode

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts import services
from apps.accounts.forms import ApiTokenForm, OtpTokenForm, StaffLoginForm
from apps.accounts.middleware import second_factor_redirect
from apps.accounts.models import Role, User
from apps.accounts.oidc import oidc_enabled
from apps.accounts.permissions import SignInRequiredMixin, request_user
from apps.accounts.roles import capabilities_for
from apps.accounts.scopes import ALL_SCOPES, Scope
from apps.accounts.selectors import (
    api_token_list_for,
    user_has_own_second_factor,
    user_needs_second_factor,
)
from apps.core.errors import DomainError
from apps.core.forms import form_add_domain_error

_SETUP_DEVICE = "amanah_otp_setup_device"


class StaffLoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = StaffLoginForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        # "Sign in with your company account" when a provider is configured.
        context["oidc_enabled"] = oidc_enabled()
        return context


class StaffLogoutView(auth_views.LogoutView):
    pass


class HomeView(SignInRequiredMixin, TemplateView):
    template_name = "accounts/home.html"

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            # The public front door is the customers' (the many; their sign-in links
            # to the staff's): staff reach their pages by their own links, which
            # come back through the staff sign-in.
            return redirect("portal:login")
        if request.user.role == Role.CUSTOMER:
            return redirect("portal:consents")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        context["role_label"] = user.get_role_display()
        context["capabilities"] = capabilities_for(user.role)
        return context


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return reverse("home")


def _render_codes(request: HttpRequest, codes: list[str], next_url: str):
    return render(
        request,
        "accounts/recovery_codes.html",
        {"codes": codes, "next": next_url},
    )


class VerifiedIfEnrolledMixin(SignInRequiredMixin):
    """Someone who has a second factor must have used it in this session: a password
    alone must not replace the authenticator or mint recovery codes."""

    def dispatch(self, request, *args, **kwargs):
        if (
            request.user.is_authenticated
            and user_needs_second_factor(user=request.user) == "verify"
        ):
            return second_factor_redirect(request, "verify")
        return super().dispatch(request, *args, **kwargs)


# Keys, QR codes and recovery codes must not stay in a browser or proxy cache.
@method_decorator(never_cache, name="dispatch")
class OtpSetupView(VerifiedIfEnrolledMixin, View):
    """Set up an authenticator app: scan, type the first code, keep recovery codes."""

    template_name = "accounts/otp_setup.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        device = self._device(request) or services.otp_setup_begin(
            user=request_user(request)
        )
        request.session[_SETUP_DEVICE] = device.pk
        return self._page(request, device, OtpTokenForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        device = self._device(request)
        if device is None:
            return redirect(request.get_full_path())
        form = OtpTokenForm(request.POST)
        if form.is_valid():
            try:
                codes = services.otp_setup_confirm(
                    user=request_user(request),
                    device_id=device.pk,
                    token=form.cleaned_data["otp_token"],
                )
            except DomainError as error:
                form_add_domain_error(form, error)
            else:
                del request.session[_SETUP_DEVICE]
                device.refresh_from_db()
                services.session_verify(request=request, device=device)
                return _render_codes(request, codes, _next_url(request))
        return self._page(request, device, form)

    def _device(self, request: HttpRequest) -> TOTPDevice | None:
        device_id = request.session.get(_SETUP_DEVICE)
        if device_id is None:
            return None
        return TOTPDevice.objects.filter(
            user=request.user, pk=device_id, confirmed=False
        ).first()

    def _page(self, request, device: TOTPDevice, form: OtpTokenForm) -> HttpResponse:
        # segno builds the SVG itself (the URL is escaped, there is no script), so it
        # is safe to embed, and the CSP holds.
        qr_svg = segno.make(device.config_url, error="m").svg_inline(
            scale=5, title=gettext("Authenticator QR code")
        )
        return render(
            request,
            self.template_name,
            {
                "form": form,
                "qr_svg": mark_safe(qr_svg),  # noqa: S308  # nosec B308 B703
                "secret": _grouped(b32encode(device.bin_key).decode()),
                "replacing": user_has_own_second_factor(user=request_user(request)),
                "next": _next_url(request),
            },
        )


def _grouped(secret: str) -> str:
    """A base32 secret in groups of four, for typing into an authenticator."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


# Keys, QR codes and recovery codes must not stay in a browser or proxy cache.
@method_decorator(never_cache, name="dispatch")
class OtpVerifyView(SignInRequiredMixin, View):
    """The second step of signing in: an authenticator code or a recovery code."""

    template_name = "accounts/otp_verify.html"

    def get(self, request: HttpRequest) -> HttpResponse:
        # django-otp's middleware gives the user is_verified().
        if request.user.is_verified():  # type: ignore[union-attr]
            return redirect(_next_url(request))
        return render(
            request,
            self.template_name,
            {"form": OtpTokenForm(), "next": _next_url(request)},
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        form = OtpTokenForm(request.POST)
        if form.is_valid():
            try:
                device = services.otp_verify(
                    user=request_user(request), token=form.cleaned_data["otp_token"]
                )
            except DomainError as error:
                form_add_domain_error(form, error)
            else:
                services.session_verify(request=request, device=device)
                return redirect(_next_url(request))
        return render(
            request, self.template_name, {"form": form, "next": _next_url(request)}
        )


# Keys, QR codes, recovery codes and API keys must not stay in a browser or proxy cache.
@method_decorator(never_cache, name="dispatch")
class SecurityView(VerifiedIfEnrolledMixin, TemplateView):
    """The second factor, recovery codes, API tokens (staff), and signing out
    everywhere."""

    template_name = "accounts/security.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        context["has_device"] = user_has_own_second_factor(user=user)
        context["must_keep"] = user.is_staff_role
        context["idle_minutes"] = settings.AMANAH_SESSION_IDLE_MINUTES
        context["token_hours"] = settings.AMANAH_TOKEN_HOURS
        if user.is_staff_role:
            context["tokens"] = [
                (token, [Scope(s).label for s in token.scopes or ALL_SCOPES])
                for token in api_token_list_for(user=user)
            ]
            context.setdefault("token_form", ApiTokenForm())
        return context

    def post(self, request: HttpRequest) -> HttpResponse:
        action = request.POST.get("action")
        user = request_user(request)
        try:
            if action == "recovery_codes":
                codes = services.otp_recovery_codes_regenerate(user=user)
                return _render_codes(request, codes, reverse("accounts:security"))
            if action == "disable":
                services.otp_disable(actor=user, user=user)
                logout(request)
                messages.info(
                    request, gettext("Two-step sign-in is off. Sign in again.")
                )
                return redirect(_login_for(user))
            if action == "sign_out_everywhere":
                services.user_sign_out_everywhere(user=user)
                logout(request)
                messages.info(request, gettext("You are signed out on every device."))
                return redirect(_login_for(user))
            if action == "token_create":
                needed = user_needs_second_factor(user=user)
                if needed is not None:
                    # A named token lasts months: not on a password alone.
                    return second_factor_redirect(request, needed)
                return self._token_create(request, user)
            if action == "token_revoke":
                token = services.api_token_revoke(
                    actor=user, token_id=_posted_id(request.POST.get("token_id"))
                )
                messages.info(request, f"Token {token.key_prefix}… is revoked.")
        except DomainError as error:
            messages.error(request, error.message)
        return redirect("accounts:security")

    def _token_create(self, request: HttpRequest, user: User) -> HttpResponse:
        form = ApiTokenForm(request.POST)
        if form.is_valid():
            try:
                issued = services.api_token_create(actor=user, **form.cleaned_data)
            except DomainError as error:
                if error.field is None:
                    raise  # not a field's fault (a customer): a message above the page
                form_add_domain_error(form, error)
            else:
                return render(
                    request,
                    "accounts/api_token_created.html",
                    {
                        "token": issued.token,
                        "key": issued.key,
                        "scopes": [Scope(s).label for s in issued.token.scopes or ()],
                    },
                )
        return self.render_to_response(
            self.get_context_data(token_form=form), status=400
        )


def _posted_id(value: str | None) -> int:
    """A posted id as a number; anything else is no token's (0)."""
    return int(value) if value and value.isdigit() else 0


def _login_for(user) -> str:
    return "portal:login" if user.role == Role.CUSTOMER else "accounts:login"
