from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from guardian.shortcuts import get_perms

from apps.access.defaults import DEFAULT_POLICY
from apps.access.errors import AccessError, AccessForbidden, RateLimited
from apps.access.models import (
    AccessLogEntry,
    FieldPolicy,
    Interaction,
    Reveal,
    RevealStatus,
)
from apps.access.selectors import customer_get_for_staff, policy_matrix
from apps.access.services import (
    customers_read,
    interaction_close,
    interaction_open,
    policy_set,
    reveal_open,
)
from apps.access.tasks import interactions_expire_task
from apps.accounts.models import Role
from apps.audit.models import AuditEvent
from apps.core.errors import NotFound
from tests.access.factories import assign, assign_then_expire
from tests.accounts.factories import UserFactory
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer():
    return make_customer(email="jane@example.com", phone="+62 812-3456-7890")


def test_opening_grants_and_closing_withdraws_the_object_permission(
    support_agent, customer
):
    interaction = interaction_open(
        actor=support_agent, customer=customer, kind="support_case"
    )
    assert "view_customer" in get_perms(support_agent, customer)
    assert interaction.contact_alias.startswith("+1555")
    assert AuditEvent.objects.filter(action="interaction.opened").count() == 1

    interaction_close(actor=support_agent, interaction=interaction)
    assert "view_customer" not in get_perms(support_agent, customer)
    with pytest.raises(NotFound):
        customer_get_for_staff(actor=support_agent, customer_id=customer.pk)


def test_closing_one_of_two_interactions_keeps_the_permission(support_agent, customer):
    first = interaction_open(
        actor=support_agent, customer=customer, kind="support_case"
    )
    interaction_open(actor=support_agent, customer=customer, kind="support_case")
    interaction_close(actor=support_agent, interaction=first)
    assert customer_get_for_staff(actor=support_agent, customer_id=customer.pk)


def test_the_beat_task_expires_interactions_and_withdraws_permissions(
    delivery_agent, customer
):
    interaction = assign_then_expire(delivery_agent, customer)
    assert "view_customer" in get_perms(delivery_agent, customer)  # until the task runs
    with pytest.raises(NotFound):  # ...but the expiry already hides the customer
        customer_get_for_staff(actor=delivery_agent, customer_id=customer.pk)

    assert interactions_expire_task.delay().get() == 1
    interaction.refresh_from_db()
    assert interaction.close_reason == "expired"
    assert "view_customer" not in get_perms(delivery_agent, customer)
    assert AuditEvent.objects.filter(action="interaction.expired").count() == 1
    assert interactions_expire_task.delay().get() == 0


@pytest.mark.parametrize(
    ("actor_role", "kwargs", "error", "field"),
    [
        (Role.DELIVERY_AGENT, {"kind": "delivery"}, AccessForbidden, None),
        (Role.COMPLIANCE_OFFICER, {"kind": "support_case"}, AccessForbidden, None),
        (Role.SUPPORT_AGENT, {"kind": "delivery"}, AccessError, "kind"),
        (
            Role.SUPPORT_AGENT,
            {"kind": "support_case", "expires_at": timezone.now() - timedelta(hours=1)},
            AccessError,
            "expires_at",
        ),
        (
            Role.SUPPORT_AGENT,
            {"kind": "support_case", "expires_at": timezone.now() + timedelta(days=30)},
            AccessError,
            "expires_at",
        ),
    ],
)
def test_interaction_refusals_write_nothing(customer, actor_role, kwargs, error, field):
    actor = UserFactory(username="actor", role=actor_role)
    with pytest.raises(error) as exc:
        interaction_open(actor=actor, customer=customer, **kwargs)
    assert exc.value.field == field
    assert not Interaction.objects.exists()
    assert not AuditEvent.objects.filter(action="interaction.opened").exists()


def test_only_privacy_admins_assign_others(support_agent, delivery_agent, customer):
    with pytest.raises(AccessForbidden):
        interaction_open(
            actor=support_agent,
            staff=delivery_agent,
            customer=customer,
            kind="delivery",
        )
    admin = UserFactory(username="pa", role=Role.PRIVACY_ADMIN)
    interaction = interaction_open(
        actor=admin, staff=delivery_agent, customer=customer, kind="delivery"
    )
    assert interaction.staff == delivery_agent
    assert interaction.opened_by == admin


def test_reveal_shows_fields_in_full_until_it_expires(
    support_agent, customer, settings
):
    assign(support_agent, customer)
    reveal, values = reveal_open(
        actor=support_agent,
        customer=customer,
        fields=["email", "phone"],
        reason="Customer asked for a callback",
    )
    assert values == {"email": "jane@example.com", "phone": "+6281234567890"}
    assert reveal.expires_at - reveal.created_at == timedelta(
        minutes=settings.AMANAH_REVEAL_MINUTES
    )
    [view] = customers_read(actor=support_agent, customers=[customer])
    assert view["email"] == "jane@example.com"
    assert view["shown"]["email"] == "full"
    assert view["reveal_expires_at"] == reveal.expires_at

    Reveal.objects.filter(pk=reveal.pk).update(expires_at=timezone.now())
    [view] = customers_read(actor=support_agent, customers=[customer])
    assert view["email"] == "j•••@example.com"
    assert "reveal_expires_at" not in view


def test_a_read_gives_each_revealed_field_its_end_and_logs_the_reveal_shown(
    support_agent, customer
):
    assign(support_agent, customer)
    email, _ = reveal_open(
        actor=support_agent,
        customer=customer,
        fields=["email"],
        reason="Customer asked for a callback",
    )
    phone, _ = reveal_open(
        actor=support_agent,
        customer=customer,
        fields=["phone"],
        reason="Customer asked for a callback",
    )
    Reveal.objects.filter(pk=email.pk).update(
        expires_at=timezone.now() + timedelta(minutes=2)
    )
    email.refresh_from_db()

    [view] = customers_read(actor=support_agent, customers=[customer])
    assert view["reveal_ends"] == {
        "email": email.expires_at,
        "phone": phone.expires_at,
    }
    assert view["reveal_expires_at"] == phone.expires_at

    # A page showing the email and not the phone names the email's reveal.
    before = set(AccessLogEntry.objects.values_list("pk", flat=True))
    [view] = customers_read(
        actor=support_agent, customers=[customer], only={"full_name", "email"}
    )
    assert view["reveal_ends"] == {"email": email.expires_at}
    [entry] = AccessLogEntry.objects.exclude(pk__in=before)
    assert entry.reveal_id == email.pk
    # One showing neither names no reveal.
    before.add(entry.pk)
    customers_read(actor=support_agent, customers=[customer], only={"full_name"})
    [entry] = AccessLogEntry.objects.exclude(pk__in=before)
    assert entry.reveal_id is None


def test_sensitive_fields_are_refused_with_403_and_audited(support_agent, customer):
    assign(support_agent, customer)
    with pytest.raises(AccessForbidden, match="national_id"):
        reveal_open(
            actor=support_agent,
            customer=customer,
            fields=["email", "national_id"],
            reason="Customer asked for a callback",
        )
    refused = Reveal.objects.get()
    assert refused.status == RevealStatus.REFUSED
    assert AuditEvent.objects.filter(action="reveal.refused").count() == 1
    assert not AccessLogEntry.objects.exists()


def test_reveals_are_rate_limited_per_agent(support_agent, customer, settings):
    settings.AMANAH_REVEALS_PER_HOUR = 3
    assign(support_agent, customer)
    for _ in range(3):
        reveal_open(
            actor=support_agent, customer=customer, fields=["email"], reason="x" * 12
        )
    with pytest.raises(RateLimited):
        reveal_open(
            actor=support_agent, customer=customer, fields=["email"], reason="x" * 12
        )
    assert Reveal.objects.filter(status=RevealStatus.GRANTED).count() == 3
    # An hour later the budget is back.
    Reveal.objects.update(created_at=timezone.now() - timedelta(minutes=61))
    reveal_open(
        actor=support_agent, customer=customer, fields=["email"], reason="x" * 12
    )


@pytest.mark.parametrize(
    ("fields", "reason", "field"),
    [
        ([], "a good long reason", "fields"),
        (["password"], "a good long reason", "fields"),
        (["email"], "too short", "reason"),
        (["email"], "mail jane@example.com back", "reason"),
    ],
)
def test_reveal_input_refusals_write_nothing(
    support_agent, customer, fields, reason, field
):
    assign(support_agent, customer)
    with pytest.raises(AccessError) as exc:
        reveal_open(
            actor=support_agent, customer=customer, fields=fields, reason=reason
        )
    assert exc.value.field == field
    assert not Reveal.objects.exists()


def test_each_read_is_logged_exactly_once_in_one_insert(support_agent, monkeypatch):
    from apps.access.services import reads as services

    customers = [make_customer() for _ in range(5)]
    for customer in customers:
        assign(support_agent, customer)
    writes = []
    real = services.access_log_write
    monkeypatch.setattr(
        services,
        "access_log_write",
        lambda **kw: writes.append(len(kw["entries"])) or real(**kw),
    )
    with CaptureQueriesContext(connection) as queries:
        views = customers_read(actor=support_agent, customers=customers)
    assert writes == [5]  # one statement for the whole page
    inserts = [q for q in queries.captured_queries if "INSERT" in q["sql"]]
    assert len(inserts) == 1  # and Django's query log counts it
    assert len(views) == 5
    entries = AccessLogEntry.objects.filter(staff=support_agent)
    assert entries.count() == 5
    entry = entries.first()
    assert entry.purpose == "support_case"
    assert entry.interaction is not None
    assert entry.fields["full_name"] == "full"
    assert entry.fields["email"] == "masked"
    assert "national_id" not in entry.fields


def test_read_query_count_does_not_grow_with_the_page(support_agent):
    def reads(n: int) -> int:
        customers = [make_customer() for _ in range(n)]
        for customer in customers:
            assign(support_agent, customer)
        with CaptureQueriesContext(connection) as queries:
            customers_read(actor=support_agent, customers=customers)
        return len(queries.captured_queries)

    assert reads(2) == reads(10)


def test_policy_edits_change_what_staff_see_and_are_audited(support_agent, customer):
    admin = UserFactory(username="pa", role=Role.PRIVACY_ADMIN)
    assign(support_agent, customer)
    policy_set(
        actor=admin,
        role=Role.SUPPORT_AGENT,
        category="contact",
        visibility="hidden",
        revealable=False,
    )
    [view] = customers_read(actor=support_agent, customers=[customer])
    assert "email" not in view
    event = AuditEvent.objects.get(action="policy.changed")
    assert event.target_id == "support_agent:contact"
    assert event.details["from"] == "masked"
    assert event.details["to"] == "hidden"

    policy_set(  # no change: no event
        actor=admin,
        role=Role.SUPPORT_AGENT,
        category="contact",
        visibility="hidden",
        revealable=False,
    )
    assert AuditEvent.objects.filter(action="policy.changed").count() == 1


def test_only_privacy_admins_edit_the_policy(compliance_officer):
    with pytest.raises(AccessForbidden):
        policy_set(
            actor=compliance_officer,
            role=Role.SUPPORT_AGENT,
            category="contact",
            visibility="full",
            revealable=False,
        )


def test_the_migration_seeds_the_shipped_defaults():
    from importlib import import_module

    seeded = import_module("apps.access.migrations.0002_seed_policy").POLICY
    assert {r: dict(c) for r, c in seeded.items()} == {
        str(r): {str(k): v for k, v in c.items()} for r, c in DEFAULT_POLICY.items()
    }
    assert FieldPolicy.objects.count() == 24
    assert policy_matrix()[("support_agent", "contact")].revealable is True
