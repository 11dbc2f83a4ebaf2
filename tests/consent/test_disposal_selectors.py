"""The consent ledger as disposal sees it: events whose consent was withdrawn, and
when (what the consent app offers apps.retention)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.consent.models import ConsentEvent, ConsentSource, ConsentState
from apps.consent.selectors import (
    consent_event_counts_by_withdrawal,
    consent_event_queryset,
    consent_event_withdrawn_filter,
)
from apps.customers.models import Customer
from tests.consent.factories import consent_answer
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


def _answers(customer, *granted: bool) -> None:
    for answer in granted:
        consent_answer(
            customer, "marketing_sms", answer, source=ConsentSource.SELF_SERVICE
        )


def _withdrawn_days_ago(customer, days: int) -> None:
    ConsentState.objects.filter(customer=customer).update(
        updated_at=timezone.now() - timedelta(days=days)
    )


def test_every_event_of_a_withdrawn_consent_starts_its_clock_at_the_withdrawal():
    withdrawn, granted = make_customer(), make_customer()
    _answers(withdrawn, True, False)
    _answers(granted, False, True)
    for customer in (withdrawn, granted):
        _withdrawn_days_ago(customer, 10)
    now = timezone.now()
    due = consent_event_queryset().filter(
        consent_event_withdrawn_filter(before=now - timedelta(days=5))
    )
    assert set(due.values_list("customer_id", flat=True)) == {withdrawn.pk}
    assert due.count() == 2
    later = consent_event_withdrawn_filter(before=now - timedelta(days=20))
    assert not consent_event_queryset().filter(later).exists()


def test_events_are_counted_per_withdrawal_window_and_for_some_customers():
    recent, old, older = make_customer(), make_customer(), make_customer()
    for customer, days in ((recent, 5), (old, 50), (older, 500)):
        _answers(customer, True, False)
        _withdrawn_days_ago(customer, days)
    now = timezone.now()
    windows = {
        "last_month": (now - timedelta(days=30), now),
        "last_year": (now - timedelta(days=365), now),
        "up_to_a_month_ago": (None, now - timedelta(days=30)),
    }
    assert consent_event_counts_by_withdrawal(windows=windows) == {
        "last_month": (2, 0),
        "last_year": (4, 0),
        "up_to_a_month_ago": (4, 0),
    }
    some = Customer.objects.filter(pk__in=[recent.pk, older.pk]).values("pk")
    assert consent_event_counts_by_withdrawal(windows=windows, customers=some) == {
        "last_month": (2, 2),
        "last_year": (4, 2),
        "up_to_a_month_ago": (4, 2),
    }
    assert ConsentEvent.objects.count() == 6
