"""Staff pages: the desk (my interactions, search), a customer as my role may see them,
reveals, the policy editor (privacy admins) and oversight of reveals and relays."""

import math
from collections.abc import Collection
from datetime import timedelta
from typing import cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.views import View
from django.views.generic import TemplateView

from apps.access.errors import REVEALS_SUSPENDED, RevealsSuspended
from apps.access.forms import RevealForm
from apps.access.models import InteractionKind, RevealStatus, Visibility
from apps.access.selectors import (
    access_log_for_customer,
    customer_exists,
    customer_get_for_staff,
    customer_of,
    customer_search_for_staff,
    interaction_current_for,
    interaction_get_for,
    interaction_list_for,
    policy_cell,
    policy_matrix,
    relay_list_recent,
    reveal_list_ended_for,
    reveal_list_recent,
)
from apps.access.services import (
    customers_read,
    customers_read_for_desk,
    interaction_close,
    interaction_open,
    policy_set,
    reveal_open,
)
from apps.access.watchers import reveals_suspended_since
from apps.accounts.models import GOVERNANCE_ROLES, STAFF_ROLES, Role
from apps.accounts.permissions import RoleRequiredMixin, request_user
from apps.core.errors import DomainError, Forbidden, NotFound
from apps.core.forms import form_add_domain_error
from apps.customers.forms import SEARCH_FIELDS, CustomerSearchForm
from apps.customers.registry import PII_BY_NAME, PII_FIELDS, DataCategory
from apps.customers.selectors import (
    customer_restriction_get,
    customer_restrictions_active,
    customer_restrictions_active_for,
)
from apps.customers.services import customer_restriction_lift


def _minutes_left(moment) -> int:
    """Whole minutes left, rounded up: "1 more minute" until the very end."""
    seconds = (moment - timezone.now()).total_seconds()
    return max(0, math.ceil(seconds / 60))


# How long after a reveal ended the customer page still says so ("expired").
REVEAL_ENDED_SHOWN_FOR = timedelta(hours=1)


def _reveals_ended(reveals: list, *, still_open: Collection[str]) -> list[dict]:
    """What the customer page says has ended, the latest first: each ended reveal
    with its fields that no live reveal shows and no later-ended one names."""
    said: set[str] = set(still_open)
    notices = []
    for reveal in reveals:
        names = [n for n in reveal.fields if n in PII_BY_NAME and n not in said]
        said.update(names)
        if names:
            notices.append(
                {
                    "labels": [PII_BY_NAME[n].label for n in names],
                    "suspended": reveal.status == RevealStatus.SUSPENDED,
                    "at": reveal.expires_at,
                }
            )
    return notices


# Roles whose desk has the search form.
SEARCH_ROLES = frozenset({Role.SUPPORT_AGENT, *GOVERNANCE_ROLES})
SEARCH_IN_URL = (
    "Search with the “Find a customer” form on this page: it sends the email address "
    "or phone number in the request body (POST), never in the page's address, which "
    "server and proxy logs keep. Nothing was searched."
)


class StaffDeskView(RoleRequiredMixin, TemplateView):
    """The desk: my open interactions and, for searching roles, the exact search. The
    search is a POST answered on the page itself (no redirect), so the email or phone
    never sits in a URL; a desk URL carrying either is refused."""

    allowed_roles = STAFF_ROLES
    template_name = "access/desk.html"

    def get(self, request, *args, **kwargs):
        if SEARCH_FIELDS & request.GET.keys():
            return self.refuse_search_in_url()
        return super().get(request, *args, **kwargs)

    def post(self, request, *args, **kwargs):
        """The search form."""
        if request.user.role not in SEARCH_ROLES:
            raise PermissionDenied
        if SEARCH_FIELDS & request.GET.keys():
            return self.refuse_search_in_url()
        form = CustomerSearchForm(request.POST)
        context = self.get_context_data(search_form=form)
        return self.render_to_response(context, status=200 if form.is_valid() else 400)

    def refuse_search_in_url(self):
        context = self.get_context_data(search_refused=SEARCH_IN_URL)
        return self.render_to_response(context, status=400)

    def get_context_data(self, search_form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        interactions = list(interaction_list_for(actor=user)[:100])
        restricted = customer_restrictions_active_for(
            customer_ids=[i.customer_id for i in interactions]
        )
        desk = customers_read_for_desk(actor=user, interactions=interactions)
        for interaction in interactions:
            interaction.minutes_left = _minutes_left(interaction.expires_at)
            interaction.restrictions = restricted.get(interaction.customer_id, [])
            interaction.seen = desk.by_id.get(interaction.customer_id, {})
        context["interactions"] = interactions
        context["desk"] = desk
        if user.role in SEARCH_ROLES:
            form = search_form or CustomerSearchForm()
            context["search_form"] = form
            if form.is_bound and form.is_valid():
                search = customer_search_for_staff(
                    actor=user,
                    email=form.cleaned_data["email"],
                    phone=form.cleaned_data["phone"],
                )
                found = list(search.customers[:20])
                context["results"] = customers_read(
                    actor=user, customers=found, capped=search.capped
                )
        return context


class StaffCustomerView(RoleRequiredMixin, TemplateView):
    allowed_roles = STAFF_ROLES
    template_name = "access/customer.html"

    def get_customer(self):
        try:
            return customer_get_for_staff(
                actor=self.request.user, customer_id=self.kwargs["customer_id"]
            )
        except NotFound as exc:
            raise Http404(str(exc)) from exc

    def revealable(self, matrix: dict) -> list[tuple[str, str]]:
        """The fields the role may reveal: what a reveal request may name."""
        role = request_user(self.request).role
        return [
            (spec.name, str(spec.label))
            for spec in PII_FIELDS
            if policy_cell(matrix, role, spec.category).revealable
        ]

    def reveal_choices(self, view: dict, matrix: dict) -> list[tuple[str, str]]:
        """What the page's reveal form names: the revealable fields it shows, not in
        full without a reveal. A field a live reveal shows is among them (its box
        hidden until that reveal ends; the countdown script then offers it)."""
        revealed = view.get("reveal_ends", {})
        return [
            (name, label)
            for name, label in self.revealable(matrix)
            if (view.get("shown", {}).get(name) != Visibility.FULL or name in revealed)
            and view.get(name) is not None
        ]

    def unrevealed(self, matrix: dict, category: str, restricted: bool) -> str:
        """A field's visibility for the role without a reveal (as the read has it:
        a restricted customer's full values are masked)."""
        visibility = policy_cell(matrix, request_user(self.request).role, category)
        if restricted and visibility.visibility == Visibility.FULL:
            return Visibility.MASKED
        return visibility.visibility

    def get_context_data(self, reveal_form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        user = self.request.user
        found = self.get_customer()
        customer = customer_of(found)
        # One read of the policy for the page (the view and its reveal form).
        matrix = policy_matrix()
        [view] = customers_read(actor=user, customers=[found], matrix=matrix)
        # Each field shown in full only by a reveal, with the end of the reveal that
        # opened it: the page takes each off at its own end, not at the last one's.
        reveal_ends = view.get("reveal_ends", {})
        restricted = bool(view.get("restricted"))
        rows = []
        for spec in PII_FIELDS:
            if spec.name in view:
                rows.append(
                    {
                        "name": spec.name,
                        "label": spec.label,
                        "category": DataCategory(spec.category).label,
                        "value": view[spec.name],
                        "shown": view["shown"].get(spec.name, ""),
                        "revealed": spec.name in reveal_ends,
                        "expires_at": reveal_ends.get(spec.name),
                        # What "Shown" says once its reveal ends.
                        "after": self.unrevealed(matrix, spec.category, restricted),
                    }
                )
        suspended_since = reveals_suspended_since(staff_id=user.pk)
        # While an alert holds the agent's reveals suspended the page offers none.
        choices = [] if suspended_since else self.reveal_choices(view, matrix)
        restrictions = view.get("restricted", [])
        interaction = interaction_current_for(actor=user, customer=found)
        if interaction:
            interaction.minutes_left = _minutes_left(interaction.expires_at)
        ended = reveal_list_ended_for(
            actor=user,
            customer_id=customer.pk,
            since=timezone.now() - REVEAL_ENDED_SHOWN_FOR,
        )
        now = timezone.now()
        # Without JavaScript the page reloads itself a second after the first of
        # its reveals ends (a <noscript> meta refresh): no value stays past its end.
        refresh_in = (
            math.ceil((min(reveal_ends.values()) - now).total_seconds()) + 1
            if reveal_ends
            else None
        )
        # Headed by the name when the role sees it in full without a reveal (an
        # erased customer's reads "[erased]": the short id heads it).
        named = (
            view.get("shown", {}).get("full_name") == Visibility.FULL
            and "full_name" not in reveal_ends
            and not view.get("erased")
        )
        context.update(
            customer=customer,
            heading_name=view["full_name"] if named else None,
            view=view,
            rows=rows,
            masked=[r["label"] for r in rows if r["shown"] == Visibility.MASKED],
            revealable=[label for name, label in choices if name not in reveal_ends],
            revealed_now=[name for name, _label in choices if name in reveal_ends],
            suspended_since=suspended_since,
            reveal_window=settings.AMANAH_REVEAL_MINUTES,
            revealed_rows=sorted(
                (r for r in rows if r["revealed"]), key=lambda r: r["expires_at"]
            ),
            reveals_ended=_reveals_ended(ended, still_open=reveal_ends.keys()),
            now=now,
            refresh_in=max(1, refresh_in) if refresh_in is not None else None,
            interaction=interaction,
            restrictions=restrictions,
            can_lift=user.role == Role.PRIVACY_ADMIN,
            reveal_form=self.offer(
                reveal_form, choices, [r["purpose"] for r in restrictions]
            ),
            recent_access=access_log_for_customer(customer=customer)[:20]
            if user.role in GOVERNANCE_ROLES
            else None,
        )
        return context

    @staticmethod
    def offer(
        form: RevealForm | None, choices: list, restricted_to: list[str]
    ) -> RevealForm | None:
        """The reveal form the page shows: a refused one keeps its input, with the
        page's choices; for a restricted customer it offers the restriction's
        purpose to confirm."""
        if form is None:
            if not choices:
                return None
            return RevealForm(choices=choices, restricted_to=restricted_to)
        cast(forms.MultipleChoiceField, form.fields["fields"]).choices = choices
        return form

    def suspended_answer(self):
        """403: the page with its notice that an alert holds the reveals suspended,
        and no reveal form."""
        messages.error(self.request, REVEALS_SUSPENDED)
        return self.render_to_response(self.get_context_data(), status=403)

    def post(self, request, *args, **kwargs):
        """The reveal form. Checked against what the role may reveal, without reading
        the customer first; the values show on the page it redirects to, whose read is
        the one access-log row of the reveal (a refused one shows the page again, and
        that read is logged as a GET's is)."""
        customer = self.get_customer()
        # reveal_open refuses too (RevealsSuspended, as the API answers), by the same
        # definition; asked first so that a form sent from an old tab is answered
        # with the notice, not with its field errors.
        if reveals_suspended_since(staff_id=request.user.pk):
            return self.suspended_answer()
        form = RevealForm(
            request.POST,
            choices=self.revealable(policy_matrix()),
            restricted_to=[
                r.purpose
                for r in customer_restrictions_active(customer=customer_of(customer))
            ],
        )
        if form.is_valid():
            try:
                reveal, _ = reveal_open(
                    actor=request.user,
                    customer=customer,
                    fields=form.cleaned_data["fields"],
                    reason=form.reason_stated(),
                    returns_values=False,
                )
            except RevealsSuspended:
                # An alert suspended the reveals since the check above.
                return self.suspended_answer()
            except DomainError as exc:
                form_add_domain_error(form, exc)
            else:
                minutes = _minutes_left(reveal.expires_at)
                # Tagged: the countdown script takes it off when a reveal ends.
                messages.success(
                    request,
                    f"Revealed for {minutes} minutes. This was recorded.",
                    extra_tags="reveal-opened",
                )
                return redirect("staff:customer", customer_id=customer.pk)
        return self.render_to_response(
            self.get_context_data(reveal_form=form), status=400
        )


class RestrictionLiftView(RoleRequiredMixin, View):
    """Lift a restriction (privacy admins; other roles get 403 before anything is
    looked up, so they learn nothing of which restrictions exist), with a reason, the
    customer told first (GDPR art. 18(3))."""

    allowed_roles = (Role.PRIVACY_ADMIN,)

    def post(self, request, customer_id, restriction_id):
        try:
            restriction = customer_restriction_get(restriction_id=restriction_id)
        except NotFound as exc:
            raise Http404(str(exc)) from exc
        if restriction.customer_id != customer_id:
            raise Http404("No such restriction.")
        try:
            customer_restriction_lift(
                actor=request.user,
                restriction=restriction,
                reason=request.POST.get("reason", ""),
                customer_told=request.POST.get("customer_told") == "on",
            )
        except Forbidden as exc:
            raise PermissionDenied(str(exc)) from exc
        except DomainError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Restriction lifted (audited).")
        return redirect("staff:customer", customer_id=customer_id)


class InteractionOpenView(RoleRequiredMixin, View):
    allowed_roles = (Role.SUPPORT_AGENT,)

    def post(self, request):
        try:
            customer = customer_exists(customer_id=request.POST.get("customer", ""))
            interaction_open(
                actor=request.user, customer=customer, kind=InteractionKind.SUPPORT_CASE
            )
        except DomainError as exc:
            messages.error(request, exc.message)
            return redirect("staff:desk")
        messages.success(request, "Support case opened.")
        return redirect("staff:customer", customer_id=customer.pk)


class InteractionCloseView(RoleRequiredMixin, View):
    allowed_roles = STAFF_ROLES

    def post(self, request, interaction_id):
        try:
            interaction = interaction_get_for(
                actor=request.user, interaction_id=interaction_id
            )
            interaction_close(actor=request.user, interaction=interaction)
        except NotFound as exc:
            raise Http404(str(exc)) from exc
        except DomainError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Closed. Your access to this customer has ended.")
        return HttpResponseRedirect(reverse("staff:desk"))


class PolicyEditView(RoleRequiredMixin, TemplateView):
    allowed_roles = (Role.PRIVACY_ADMIN,)
    template_name = "access/policy.html"
    roles = (
        Role.SUPPORT_AGENT,
        Role.DELIVERY_AGENT,
        Role.COMPLIANCE_OFFICER,
        Role.PRIVACY_ADMIN,
    )

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        matrix = policy_matrix()
        context["categories"] = list(DataCategory)
        context["rows"] = [
            {
                "role": role,
                "cells": [
                    {"category": category, "cell": policy_cell(matrix, role, category)}
                    for category in DataCategory
                ],
            }
            for role in self.roles
        ]
        context["visibilities"] = list(Visibility)
        return context

    def post(self, request):
        changed = 0
        before = policy_matrix()
        try:
            for role in self.roles:
                for category in DataCategory:
                    key = f"{role}__{category}"
                    visibility = request.POST.get(f"v__{key}", "")
                    revealable = request.POST.get(f"r__{key}") == "on"
                    old = policy_cell(before, role, category)
                    if (old.visibility, old.revealable) == (visibility, revealable):
                        continue
                    policy_set(
                        actor=request.user,
                        role=role,
                        category=category,
                        visibility=visibility,
                        revealable=revealable,
                    )
                    changed += 1
        except DomainError as exc:
            messages.error(request, exc.message)
            return self.render_to_response(self.get_context_data(), status=400)
        messages.success(
            request, f"Saved: {changed} cell(s) changed, each one audited."
        )
        return redirect("staff:policy")


class OversightView(RoleRequiredMixin, TemplateView):
    allowed_roles = GOVERNANCE_ROLES
    template_name = "access/oversight.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["reveals"] = reveal_list_recent()
        context["relays"] = relay_list_recent()
        context["now"] = timezone.now()
        return context
