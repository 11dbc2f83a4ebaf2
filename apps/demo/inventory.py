"""Demo sharings with the inventory's recipients, for `seed_demo`: what an erasure
or correction is passed on to (GDPR art. 19)."""

from apps.access.models import InteractionKind
from apps.access.selectors import interaction_list_for
from apps.accounts.models import User
from apps.consent.models import ConsentSource
from apps.consent.selectors import (
    consent_granted_for_customer,
    consent_overview_for_customer,
    purpose_get_active,
)
from apps.consent.services import consent_record
from apps.customers.models import Customer, CustomerStatus
from apps.customers.selectors import customers_not_erased
from apps.inventory.models import Recipient
from apps.inventory.selectors import recipient_list, share_list
from apps.inventory.services import SharingRefused, data_share

PARTNER_PURPOSE = "partner_sharing"
DELIVERY_PARTNER = "Delivery partner"


def demo_shares_ensure(
    *, actor: User, demo_customer: Customer, courier: User, count: int = 4
) -> int:
    """The demo customer and the `count` oldest active customers agree to partner
    sharing (unless they answered already) and their data is shared with each
    recipient that purpose gates; the customers of the courier's deliveries have
    theirs shared with the delivery partner when no consent gates it. Only what is
    missing: a pair with a share recorded (allowed or refused) is not shared again,
    so a rerun changes nothing. Returns how many shares were recorded."""
    recipients = list(recipient_list())
    purpose = purpose_get_active(code=PARTNER_PURPOSE)
    gated = [r for r in recipients if purpose and r.gating_purpose_id == purpose.pk]
    shared = 0
    if purpose is not None and gated:
        candidates = customers_not_erased().filter(status=CustomerStatus.ACTIVE)
        agreeing = [demo_customer, *candidates.order_by("created_at", "pk")[:count]]
        for customer in dict.fromkeys(agreeing):
            if not consent_granted_for_customer(customer=customer, purpose=purpose):
                if _answered(customer, purpose.code):
                    continue  # the customer's own answer stands
                consent_record(
                    actor=None,
                    customer=customer,
                    purpose_code=purpose.code,
                    granted=True,
                    source=ConsentSource.SELF_SERVICE,
                )
            shared += sum(_share_once(actor, r, customer) for r in gated)
    delivery = next(
        (r for r in recipients if r.name == DELIVERY_PARTNER and not r.gating_purpose),
        None,
    )
    if delivery is not None:
        deliveries = interaction_list_for(actor=courier, include_closed=True).filter(
            kind=InteractionKind.DELIVERY
        )
        for customer in dict.fromkeys(i.customer for i in deliveries):
            shared += _share_once(actor, delivery, customer)
    return shared


def _answered(customer: Customer, code: str) -> bool:
    return any(
        view.purpose.code == code and view.state is not None
        for view in consent_overview_for_customer(customer=customer)
    )


def _share_once(actor: User, recipient: Recipient, customer: Customer) -> int:
    if share_list(recipient=recipient, customer_id=customer.pk).exists():
        return 0
    try:
        data_share(actor=actor, recipient=recipient, customer=customer)
    except SharingRefused:
        return 0  # restricted or erased meanwhile: recorded as refused, as it should
    return 1
