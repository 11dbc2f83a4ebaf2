from datetime import timedelta

from django.utils import timezone

from apps.access.models import Interaction, InteractionKind
from apps.access.services import interaction_close, interaction_open
from apps.accounts.models import Role
from tests.accounts.factories import UserFactory

KIND_FOR = {
    Role.SUPPORT_AGENT: InteractionKind.SUPPORT_CASE,
    Role.DELIVERY_AGENT: InteractionKind.DELIVERY,
}


def dispatcher():
    return UserFactory(username="dispatcher", role=Role.PRIVACY_ADMIN)


def assign(staff, customer, **kwargs) -> Interaction:
    """Open the interaction an agent's role calls for, as a privacy admin would."""
    return interaction_open(
        actor=dispatcher(),
        staff=staff,
        customer=customer,
        kind=KIND_FOR[staff.role],
        **kwargs,
    )


def assign_then_close(staff, customer) -> Interaction:
    interaction = assign(staff, customer)
    return interaction_close(actor=staff, interaction=interaction)


def assign_then_expire(staff, customer) -> Interaction:
    """An interaction past its expiry that the beat task has not closed yet."""
    interaction = assign(staff, customer)
    Interaction.objects.filter(pk=interaction.pk).update(
        opened_at=timezone.now() - timedelta(hours=9),
        expires_at=timezone.now() - timedelta(minutes=1),
    )
    interaction.refresh_from_db()
    return interaction
