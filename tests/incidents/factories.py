from datetime import timedelta
from importlib import import_module

from django.apps import apps
from django.utils import timezone

from apps.incidents.models import AffectedCustomer, Incident
from apps.incidents.services import affected_select, incident_create


def deadline_rules_seed() -> None:
    """The seeded deadline rules, holidays and status components, again: a
    transactional test (a browser's) may start from a database an earlier one
    flushed."""
    import_module("apps.incidents.migrations.0002_seed_rules").seed(apps, None)


def make_incident(actor, **overrides):
    now = timezone.now()
    data = {
        "title": "Support tool exposed contact details",
        "kind": "breach",
        "severity": "high",
        "occurred_at": now - timedelta(days=2),
        "detected_at": now - timedelta(days=1),
        "aware_at": now - timedelta(hours=20),
        "data_categories": ["contact", "identity"],
        "risk_level": "high",
        "what_happened": "A misconfigured export let a vendor see contact details.",
        "what_we_are_doing": "We closed the export and are auditing every vendor.",
        "what_you_can_do": "Be wary of messages asking for your password.",
        "contact": "privacy@amanah.example, +62 21 5091 0000",
    }
    data.update(overrides)
    return incident_create(actor=actor, data=data)


def voucher_incident(actor, people, **overrides):
    """An incident offering a voucher (so each notice carries a remedy code) that
    affects `people` (customers)."""
    incident = make_incident(actor, **overrides)
    Incident.objects.filter(pk=incident.pk).update(
        remedy_kind="voucher", remedy_description="A 20% voucher"
    )
    incident.refresh_from_db()
    affected_select(
        actor=actor,
        incident=incident,
        scope="list",
        customer_ids=" ".join(str(c.pk) for c in people),
    )
    return incident


def affect(incident, counts: dict[tuple[str, str], int]) -> None:
    """Affected rows without customers behind them (counts only matter)."""
    import uuid

    AffectedCustomer.objects.bulk_create(
        AffectedCustomer(
            incident=incident, customer_id=uuid.uuid4(), country=country, region=region
        )
        for (country, region), n in counts.items()
        for _ in range(n)
    )
