import contextlib

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from apps.accounts.models import Role
from apps.accounts.permissions import RoleRequiredMixin
from apps.core.errors import DomainError, NotFound
from apps.core.forms import form_add_domain_error
from apps.webhooks.forms import EndpointForm
from apps.webhooks.models import DeliveryStatus
from apps.webhooks.selectors import (
    COUNT_CAP,
    delivery_list,
    endpoint_get,
    endpoint_list,
    endpoint_secret_get,
)
from apps.webhooks.services import (
    deliveries_replay,
    endpoint_create,
    endpoint_delete,
    endpoint_secret_rotate,
)

DEAD_SHOWN = 20
# The session's note of the endpoint whose new secret the next list page shows once.
_SHOW_SECRET = "webhooks:show-secret"  # noqa: S105 - a session key  # nosec B105


# A signing secret is shown on these answers: never kept by a cache.
@method_decorator(never_cache, name="dispatch")
class WebhookListView(RoleRequiredMixin, TemplateView):
    """Webhook endpoints with their deliveries counted, their dead letters and a
    Replay button; a form registers one (its secret shown once, on this answer)."""

    allowed_roles = (Role.PRIVACY_ADMIN,)
    template_name = "webhooks/list.html"

    def get(self, request, *args, **kwargs):
        # The secret of the endpoint just added (or rotated) is shown on this first
        # page after the redirect, and never again (the note is popped).
        secret = secret_for = None
        shown = request.session.pop(_SHOW_SECRET, None)
        if shown:
            with contextlib.suppress(NotFound):
                secret_for = endpoint_get(endpoint_id=shown)
                secret = endpoint_secret_get(endpoint=secret_for)
        return self.render_to_response(
            self.get_context_data(secret=secret, secret_for=secret_for)
        )

    def get_context_data(self, form=None, secret=None, secret_for=None, **kwargs):
        context = super().get_context_data(**kwargs)
        endpoints = list(endpoint_list())
        for endpoint in endpoints:
            endpoint.dead_letters = (
                list(
                    delivery_list(endpoint=endpoint, status=DeliveryStatus.DEAD)[
                        :DEAD_SHOWN
                    ]
                )
                if endpoint.dead
                else []
            )
        context.update(
            endpoints=endpoints,
            form=form or EndpointForm(),
            secret=secret,
            secret_for=secret_for,
            count_cap=COUNT_CAP,
            keep_days=settings.AMANAH_WEBHOOK_KEEP_DAYS,
        )
        return context

    def post(self, request):
        form = EndpointForm(request.POST)
        if form.is_valid():
            try:
                endpoint, _secret = endpoint_create(
                    actor=request.user, **form.cleaned_data
                )
            except DomainError as exc:
                form_add_domain_error(form, exc)
            else:
                # POST/redirect/GET: a reload sends nothing again. The session notes
                # which endpoint's secret to show once (the id, never the secret).
                request.session[_SHOW_SECRET] = str(endpoint.pk)
                messages.success(request, "Endpoint added (audited).")
                return redirect("webhooks:list")
        return self.render_to_response(self.get_context_data(form=form), status=400)


@method_decorator(never_cache, name="dispatch")
class WebhookActionView(RoleRequiredMixin, View):
    """Replay an endpoint's dead letters, rotate its secret, or delete it (POST)."""

    allowed_roles = (Role.PRIVACY_ADMIN,)

    def post(self, request, endpoint_id, action):
        try:
            endpoint = endpoint_get(endpoint_id=endpoint_id)
        except NotFound:
            raise Http404 from None
        try:
            if action == "replay":
                count = deliveries_replay(actor=request.user, endpoint=endpoint)
                messages.success(
                    request, f"{count} dead letter(s) queued again (audited)."
                )
            elif action == "delete":
                endpoint_delete(actor=request.user, endpoint=endpoint)
                messages.success(request, "Endpoint deleted (audited).")
            elif action == "rotate":
                endpoint_secret_rotate(actor=request.user, endpoint=endpoint)
                request.session[_SHOW_SECRET] = str(endpoint.pk)
                messages.success(request, "Secret rotated (audited).")
        except DomainError as exc:  # deleted meanwhile
            messages.error(request, exc.message)
        return redirect("webhooks:list")
