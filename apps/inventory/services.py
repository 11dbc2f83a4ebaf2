"""Writes on the data inventory: systems, recipients, change notices, and sharing,
which is refused without the customer's consent to the recipient's gating purpose.

Lock order (apps/core/db.py): the system or recipient, then the audit chain; a share,
the customer's row, then the audit chain.
"""

import logging
from typing import Any

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone, translation
from django.utils.translation import gettext

from apps.accounts.models import Role, User
from apps.audit import services as audit
from apps.consent.selectors import (
    consent_granted_customer_ids,
    consent_granted_for_customer,
)
from apps.core.errors import DomainError, Forbidden, NotFound
from apps.core.links import public_url
from apps.core.mail import send_unless_refused
from apps.crypto.keys import data_keys_preload, key_scope
from apps.customers.models import Customer
from apps.customers.registry import DataCategory
from apps.customers.selectors import (
    customer_language,
    customer_restriction_active,
    customers_not_erased,
)
from apps.customers.services import customer_lock_erased_at
from apps.inventory.models import (
    ChangeNotice,
    ChangeNoticeDelivery,
    Recipient,
    ShareRecord,
    System,
)
from apps.inventory.texts import change_notice_parts, change_notice_summary
from apps.webhooks.models import ART19_TYPES, Scope
from apps.webhooks.selectors import endpoint_find
from apps.webhooks.services import (
    endpoint_create,
    endpoint_delete,
    endpoint_url_set,
    url_check,
)

logger = logging.getLogger(__name__)


class InventoryError(DomainError):
    code = "inventory_invalid"


class SharingRefused(Forbidden):
    code = "sharing_refused"


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    unknown = set(data.get("data_categories") or []) - set(DataCategory.values)
    if unknown:
        raise InventoryError("Unknown data category.", field="data_categories")
    country = (data.get("country") or "").upper()
    if len(country) != 2:
        raise InventoryError("Give an ISO country code.", field="country")
    return {**data, "country": country}


def _widens(before: System | Recipient | None, after: System | Recipient) -> list[str]:
    """What makes a change one customers must hear about."""
    if before is None:
        return ["new"]
    reasons = []
    if before.country != after.country:
        reasons.append("new country")
    if set(after.data_categories) - set(before.data_categories):
        reasons.append("more categories")
    return reasons


@transaction.atomic
def inventory_save(
    *,
    actor: User,
    model: type[System] | type[Recipient],
    name: str,
    data: dict[str, Any],
) -> System | Recipient:
    """Create or change a system or recipient; audited. A change that affects
    customers (new, new country, more categories) creates a change notice and
    emails the affected customers in batches."""
    data = _clean(data)
    item = model.objects.select_for_update(no_key=True).filter(name=name).first()
    before = None
    if item is not None:
        before = model(country=item.country, data_categories=list(item.data_categories))
    item = item or model(name=name)
    for key, value in data.items():
        setattr(item, key, value)
    item.save()
    reasons = _widens(before, item)
    kind = model._meta.model_name
    audit.record(
        actor=actor,
        action=f"inventory.{kind}_saved",
        target=item,
        details={"item": name, "widened": reasons},
    )
    if reasons and item.active:
        parts = change_notice_parts(
            kind="recipient" if model is Recipient else "system",
            name=item.name,
            country=item.country,
            reasons=reasons,
            categories=list(item.data_categories),
        )
        # The parts are told to each customer in their language; the summary stays
        # in English for staff.
        with translation.override(settings.LANGUAGE_CODE):
            summary = change_notice_summary(parts)
        notice = ChangeNotice.objects.create(
            summary=summary,
            parts=parts,
            created_at=timezone.now(),
            recipient=item if isinstance(item, Recipient) else None,
            system=item if isinstance(item, System) else None,
        )
        from apps.inventory.tasks import change_notice_send_task

        transaction.on_commit(lambda: change_notice_send_task.delay(notice.pk))
    return item


def change_notice_audience(notice: ChangeNotice) -> QuerySet[Customer]:
    """Who a change affects: for a recipient gated by consent, those who granted it;
    otherwise every customer whose record holds data."""
    customers = customers_not_erased()
    recipient = notice.recipient
    purpose = recipient.gating_purpose if recipient is not None else None
    if purpose is not None:
        granted = consent_granted_customer_ids(purpose=purpose)
        customers = customers.filter(pk__in=granted)
    return customers


def change_notice_send_batch(*, notice_id: int, batch_size: int = 500) -> int:
    """Email the next batch of affected customers not yet told. Returns how many."""
    notice = ChangeNotice.objects.get(pk=notice_id)
    told = ChangeNoticeDelivery.objects.filter(notice=notice).values("customer_id")
    customers = list(
        change_notice_audience(notice).exclude(pk__in=told).order_by("pk")[:batch_size]
    )
    if not customers:
        return 0
    my_data = public_url("portal:data")
    with key_scope(), get_connection() as connection:
        data_keys_preload(c.data_key_id for c in customers)
        for customer in customers:
            with transaction.atomic():
                _, created = ChangeNoticeDelivery.objects.get_or_create(
                    notice=notice,
                    customer_id=customer.pk,
                    defaults={"sent_at": timezone.now()},
                )
                if created and customer.email:
                    # One whole language: the customer's, or English for a notice
                    # kept without its parts.
                    language = (
                        customer_language(customer)
                        if notice.parts
                        else settings.LANGUAGE_CODE
                    )
                    with translation.override(language):
                        message = EmailMessage(
                            subject=gettext("A change to where your data goes"),
                            body=gettext(
                                "%(summary)s\n\nSee the details on your My data "
                                "page: %(link)s"
                            )
                            % {"summary": notice.text, "link": my_data},
                            to=[customer.email],
                            connection=connection,
                        )
                    # Refused for good: logged, and the notice still shows on
                    # their privacy page; a passing failure raises and rolls back.
                    send_unless_refused(
                        message,
                        event="inventory.change_notice_address_refused",
                        notice=notice.pk,
                        customer=str(customer.pk),
                    )
    ChangeNotice.objects.filter(pk=notice.pk).update(
        sent_count=ChangeNoticeDelivery.objects.filter(notice=notice).count()
    )
    return len(customers)


def data_share(*, actor: User, recipient: Recipient, customer: Customer) -> ShareRecord:
    """Record a sharing of the customer's data with a recipient. Raises
    SharingRefused (the refusal itself is recorded and audited, with why; its code
    says why: `restricted` while the customer's data is restricted (GDPR art. 18),
    `erased`, `inactive` for an inactive recipient, `consent` without the gating
    consent). Raises NotFound for a customer deleted meanwhile.
    Lock order: the customer's row, then the audit chain."""
    purpose = recipient.gating_purpose
    with transaction.atomic():
        # Under the customer's row lock, which every restriction, lift and consent
        # change takes too: one committing meanwhile is seen, none slips in after.
        try:
            erased = customer_lock_erased_at(customer_id=customer.pk) is not None
        except Customer.DoesNotExist:
            raise NotFound("No such customer.") from None
        allowed = purpose is None or consent_granted_for_customer(
            customer=customer, purpose=purpose
        )
        allowed = allowed and recipient.active and not erased
        restricted = customer_restriction_active(customer=customer) is not None
        allowed = allowed and not restricted
        record = ShareRecord.objects.create(
            recipient=recipient,
            customer_id=customer.pk,
            allowed=allowed,
            at=timezone.now(),
        )
        details = {"recipient": recipient.name}
        why = _refusal_reason(
            restricted=restricted, erased=erased, active=recipient.active
        )
        if not allowed:
            details["why"] = why
        audit.record(
            actor=actor,
            action="data.shared" if allowed else "data.share_refused",
            target=customer,
            details=details,
        )
    if restricted:
        raise SharingRefused(
            "This customer's data is restricted: it is not shared while the "
            "restriction lasts.",
            field="customer",
            code="restricted",
        )
    if not allowed:
        raise SharingRefused(_REFUSALS[why], field=_REFUSAL_FIELDS[why], code=why)
    return record


# Why a share is refused (the error's code and the audit's "why"), by precedence.
_REFUSALS = {
    "erased": "This customer was erased: there is no data to share.",
    "inactive": "This recipient is inactive: nothing is shared with it.",
    "consent": "This customer has not agreed to sharing with this recipient.",
}
_REFUSAL_FIELDS = {
    "erased": "customer",
    "inactive": "recipient",
    "consent": "recipient",
}


def _refusal_reason(*, restricted: bool, erased: bool, active: bool) -> str:
    if restricted:
        return "restricted"
    if erased:
        return "erased"
    return "consent" if active else "inactive"


@transaction.atomic
def recipient_endpoint_set(
    *, actor: User, recipient: Recipient, url: str
) -> str | None:
    """Give a recipient an endpoint: each erasure and correction of a customer whose
    data it received is sent there (GDPR art. 19). A new endpoint's signing secret is
    returned (shown once); for one only this recipient has, the URL changes and None is
    returned; a URL another recipient's endpoint has already is shared with it (its
    secret unchanged, None returned). An endpoint shared with other recipients is never
    moved: this recipient gets its own; one left to no recipient is deleted.
    Audited. Lock order: the recipient, then the endpoint, then the audit chain (the
    URL's address is checked before any lock). Raises Forbidden, WebhookError."""
    if getattr(actor, "role", "") != Role.PRIVACY_ADMIN:
        raise Forbidden("Only privacy admins edit the inventory.")
    url = url_check(url)
    recipient = Recipient.objects.select_for_update(no_key=True).get(pk=recipient.pk)
    secret = None
    old = (
        recipient.endpoint if recipient.endpoint and recipient.endpoint.active else None
    )
    old_shared = (
        old is not None
        and Recipient.objects.filter(endpoint_id=old.pk)
        .exclude(pk=recipient.pk)
        .exists()
    )
    # A deleted endpoint (on the webhooks page) is replaced by a new one.
    shared = endpoint_find(url=url, scope=Scope.RECIPIENTS)
    if shared is not None:
        if recipient.endpoint_id != shared.pk:
            recipient.endpoint = shared
            recipient.save(update_fields=["endpoint", "updated_at"])
            if old is not None and not old_shared:
                endpoint_delete(actor=actor, endpoint=old)
    elif old is not None and not old_shared:
        endpoint_url_set(actor=actor, endpoint=old, url=url)
    else:
        endpoint, secret = endpoint_create(
            actor=actor,
            url=url,
            events=list(ART19_TYPES),
            description=f"Recipient: {recipient.name}"[:200],
            scope=Scope.RECIPIENTS,
        )
        recipient.endpoint = endpoint
        recipient.save(update_fields=["endpoint", "updated_at"])
    audit.record(
        actor=actor,
        action="inventory.recipient_endpoint_set",
        target=recipient,
        details={"item": recipient.name, "endpoint": str(recipient.endpoint_id)},
    )
    return secret
