"""Data for the cockpit's tests: something overdue under every seeded retention
policy, some of it on legal hold, and some not due yet."""

from datetime import timedelta

from django.utils import timezone

from apps.access.models import Interaction
from apps.consent.models import ConsentSource, ConsentState
from apps.retention.services import hold_place
from tests.access.factories import assign_then_close
from tests.consent.factories import consent_answer
from tests.retention.factories import aged_customer, overlapping_customers


def overdue_everywhere(*, agent, admin, extra: int = 0) -> None:
    """Overdue rows under each policy (`overlapping_customers`, plus withdrawn
    consents and closed interactions years old), the `held` customer under a hold,
    and `extra` more of each kind (also some not due yet)."""
    customers = overlapping_customers(agent)
    hold_place(
        actor=admin, reason="Litigation about a refund.", customer=customers["held"]
    )
    old = timezone.now() - timedelta(days=2000)
    for _ in range(1 + extra):
        aged_customer(closed_days_ago=800)
        aged_customer(closed_days_ago=100)  # not due yet
        aged_customer(inactive_days=1200)
        noted = aged_customer(created_days_ago=800, notes="Call after the holidays.")
        for granted in (True, False):
            consent_answer(
                noted, "marketing_sms", granted, source=ConsentSource.SELF_SERVICE
            )
        assign_then_close(agent, noted)
    ConsentState.objects.filter(granted=False).update(updated_at=old)
    Interaction.objects.filter(closed_at__isnull=False).update(closed_at=old)
