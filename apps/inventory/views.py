from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from apps.accounts.models import STAFF_ROLES, Role
from apps.accounts.permissions import RoleRequiredMixin
from apps.core.errors import DomainError
from apps.core.forms import form_add_domain_error
from apps.inventory.forms import InventoryForm
from apps.inventory.models import Recipient, System
from apps.inventory.selectors import (
    change_notice_list,
    recipient_get,
    recipient_list,
    system_list,
)
from apps.inventory.services import inventory_save, recipient_endpoint_set


# A recipient endpoint's signing secret is shown on an answer of this page (its
# subclass): never kept by a cache.
@method_decorator(never_cache, name="dispatch")
class InventoryView(RoleRequiredMixin, TemplateView):
    """Where personal data lives and who receives it; privacy admins edit it."""

    allowed_roles = STAFF_ROLES
    template_name = "inventory/inventory.html"

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            systems=system_list(active_only=False),
            recipients=recipient_list(active_only=False).select_related("endpoint"),
            changes=change_notice_list(),
            form=form or InventoryForm(initial={"active": True}),
        )
        return context

    def post(self, request):
        if request.user.role != Role.PRIVACY_ADMIN:
            messages.error(request, "Only privacy admins edit the inventory.")
            return redirect("inventory:list")
        form = InventoryForm(request.POST)
        if form.is_valid():
            kind, name, data = form.service_data()
            try:
                inventory_save(
                    actor=request.user,
                    model=System if kind == "system" else Recipient,
                    name=name,
                    data=data,
                )
            except DomainError as exc:
                form_add_domain_error(form, exc)
            else:
                messages.success(request, f"{name} saved (audited).")
                return redirect("inventory:list")
        return self.render_to_response(self.get_context_data(form=form), status=400)


class RecipientEndpointView(InventoryView):
    """A privacy admin sets the URL a recipient's erasures and corrections are sent
    to (GDPR art. 19); a new endpoint's signing secret is shown on this answer only."""

    def post(self, request, recipient_id):
        if request.user.role != Role.PRIVACY_ADMIN:
            messages.error(request, "Only privacy admins edit the inventory.")
            return redirect("inventory:list")
        recipient = recipient_get(recipient_id=recipient_id)
        if recipient is None:
            raise Http404
        try:
            secret = recipient_endpoint_set(
                actor=request.user,
                recipient=recipient,
                url=request.POST.get("url", ""),
            )
        except DomainError as exc:
            context = self.get_context_data(
                endpoint_error=exc.message, endpoint_for=recipient.pk
            )
            return self.render_to_response(context, status=400)
        if secret is None:
            messages.success(
                request,
                f"{recipient.name}'s endpoint saved, its secret unchanged (audited).",
            )
            return redirect("inventory:list")
        context = self.get_context_data(secret=secret, secret_for=recipient)
        return self.render_to_response(context, status=201)
