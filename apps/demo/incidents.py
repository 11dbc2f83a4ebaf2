"""Demo incidents, for `seed_demo`: what the incident pages and the status page show
on a fresh install."""

from datetime import timedelta

from django.utils import timezone

from apps.accounts.models import User
from apps.incidents.models import IncidentStatus
from apps.incidents.selectors import incident_list
from apps.incidents.services import (
    affected_select,
    incident_create,
    incident_transition,
    status_publish,
)


def demo_incidents_ensure(*, actor: User) -> int:
    """An open suspected breach with its deadlines and a resolved outage on the status
    page, if the register is empty (seed_demo)."""
    if incident_list().exists():
        return 0
    now = timezone.now()
    outage = incident_create(
        actor=actor,
        data={
            "title": "Checkout unavailable",
            "kind": "outage",
            "severity": "medium",
            "occurred_at": now - timedelta(days=14, hours=3),
            "detected_at": now - timedelta(days=14, hours=3),
            "aware_at": now - timedelta(days=14, hours=3),
        },
    )
    status_publish(
        actor=actor,
        incident=outage,
        phase="resolved",
        message="Checkout was down for 40 minutes after a failed deployment. No "
        "personal data was exposed. Everything works again.",
        data_at_risk="no",
    )
    incident_transition(actor=actor, incident=outage, status=IncidentStatus.RESOLVED)
    breach = incident_create(
        actor=actor,
        data={
            "title": "Support export shared with the wrong vendor",
            "kind": "suspected_breach",
            "severity": "high",
            "occurred_at": now - timedelta(days=2),
            "detected_at": now - timedelta(hours=30),
            "aware_at": now - timedelta(hours=26),
            "data_categories": ["identity", "contact"],
            "systems": ["support tool", "vendor SFTP"],
            "risk_level": "high",
            "risk_reasoning": "Names and contact details in plain text; the vendor "
            "confirms deletion but we cannot verify it yet.",
            "what_happened": "A support export went to a vendor who should not see it.",
            "what_we_are_doing": "The vendor deleted it; we are checking their logs.",
            "what_you_can_do": "Be wary of messages asking for your password.",
            "contact": "privacy@amanah.example",
        },
    )
    affected_select(
        actor=actor, incident=breach, scope="countries", countries=["ID", "US", "DE"]
    )
    return 2
