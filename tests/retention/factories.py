from datetime import timedelta
from importlib import import_module

from django.apps import apps
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


def overlapping_customers(staff) -> dict[str, Customer]:
    """Customers due under more than one policy, and some under one, with access-log
    entries a year old (of `staff`, an agent):

    - `all_three`: closed and inactive for years, with old notes and old log entries;
    - `closed_noted`: closed, with old notes; `inactive_noted`: inactive, old notes;
    - `noted`: only old notes, with old log entries; `closed`, `inactive`: one each;
    - `held`: closed and inactive, under a legal hold (place it yourself).
    """
    from apps.access.models import AccessLogEntry
    from apps.access.services import customers_read
    from tests.access.factories import assign

    note = "Asked to be called back after the holidays."
    inactive, noted = {"inactive_days": 1200}, {"created_days_ago": 800, "notes": note}
    customers = {
        "all_three": aged_customer(**inactive, **noted),
        "closed_noted": aged_customer(**noted),
        "inactive_noted": aged_customer(**inactive, **noted),
        "noted": aged_customer(**noted),
        "closed": aged_customer(),
        "inactive": aged_customer(**inactive),
        "held": aged_customer(**inactive),
    }
    for name in ("all_three", "noted"):  # read while open
        assign(staff, customers[name])
        for _ in range(2):
            customers_read(actor=staff, customers=[customers[name]])
    AccessLogEntry.objects.update(created_at=timezone.now() - timedelta(days=400))
    closed = [customers[n] for n in ("all_three", "closed_noted", "closed", "held")]
    Customer.objects.filter(pk__in=[c.pk for c in closed]).update(
        status=CustomerStatus.CLOSED, closed_at=timezone.now() - timedelta(days=800)
    )
    for customer in customers.values():
        customer.refresh_from_db()
    return customers


def policy_form_data(policy, **changes):
    """What the policy page posts for `policy` as it stands (its texts in the other
    languages included: the page shows them and posts them back), with `changes`."""
    from apps.consent.forms import translations_initial
    from apps.retention.models import POLICY_TEXT_FIELDS

    return {
        "covers": policy.covers,
        "category": policy.category or "",
        "period_days": policy.period_days,
        "trigger": policy.trigger,
        "action": policy.action,
        "legal_basis": policy.legal_basis,
        "description": policy.description,
        "enabled": "on",
        **translations_initial(policy.translations, POLICY_TEXT_FIELDS),
        **changes,
    }


def reseed_policies() -> None:
    """The retention policies as migrations 0002, 0004 and 0007 leave them (a
    transactional test starts from an empty database)."""
    migrations = "apps.retention.migrations."
    import_module(migrations + "0002_seed_policies").seed(apps, None)
    import_module(migrations + "0004_honest_policy_texts").correct(apps, None)
    import_module(migrations + "0007_texts_per_language").translate_seeded(apps, None)
