from datetime import timedelta

from django.utils import timezone

from apps.customers.models import Customer, CustomerStatus
from tests.customers.factories import make_customer


def aged_customer(
    *, closed_days_ago=None, inactive_days=None, created_days_ago=None, **kw
):
    """A customer whose clocks started the given number of days ago."""
    customer = make_customer(**kw)
    now = timezone.now()
    update = {}
    if closed_days_ago is not None:
        update.update(
            status=CustomerStatus.CLOSED,
            closed_at=now - timedelta(days=closed_days_ago),
        )
    if inactive_days is not None:
        update["last_activity_at"] = now - timedelta(days=inactive_days)
    if created_days_ago is not None:
        update["created_at"] = now - timedelta(days=created_days_ago)
    Customer.objects.filter(pk=customer.pk).update(**update)
    customer.refresh_from_db()
    return customer
