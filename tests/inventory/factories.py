from apps.inventory.models import Recipient
from apps.inventory.services import inventory_save


def partner_save(actor, **changes) -> Recipient:
    """Save the seeded "Marketing partner" through the inventory service, keeping its
    country, categories, purpose and gate but for `changes`; returns it as saved."""
    partner = Recipient.objects.get(name="Marketing partner")
    data = {
        "country": partner.country,
        "data_categories": partner.data_categories,
        "purpose": partner.purpose,
        "gating_purpose": partner.gating_purpose,
    }
    data.update(changes)
    return inventory_save(actor=actor, model=Recipient, name=partner.name, data=data)
