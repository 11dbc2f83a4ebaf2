"""Reads of consent: purposes, notices, a customer's state and history, audiences."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.consent.models import (
    ConsentEvent,
    ConsentState,
    NoticeAcknowledgement,
    NoticeChange,
    OptInRequest,
    PrivacyNotice,
    Purpose,
)
from apps.core.db import server_cursor
from apps.customers.models import Customer


def purpose_list_active() -> QuerySet[Purpose]:
    return Purpose.objects.filter(active=True)


def purpose_get_active(*, code: str) -> Purpose | None:
    return Purpose.objects.filter(code=code, active=True).first()


def notice_current(*, at: datetime | None = None) -> PrivacyNotice | None:
    """The notice in force: the newest published one whose effective date has come."""
    return (
        PrivacyNotice.objects.filter(
            published_at__isnull=False, effective_at__lte=at or timezone.now()
        )
        .order_by("-version")
        .first()
    )


def notice_current_version() -> int:
    notice = notice_current()
    return notice.version if notice else 0


@dataclass
class PurposeView:
    purpose: Purpose
    state: ConsentState | None
    pending: OptInRequest | None

    @property
    def granted(self) -> bool:
        """Granted, and under a notice at least as new as the purpose's last material
        change: an older grant needs renewing and does not count."""
        return bool(
            self.state
            and self.state.granted
            and self.state.notice_version >= self.purpose.min_notice_version
        )

    @property
    def needs_renewal(self) -> bool:
        return bool(self.state and self.state.granted and not self.granted)


def consent_overview_for_customer(*, customer: Customer) -> list[PurposeView]:
    """Each active purpose with the customer's current state and any pending opt-in."""
    states = {s.purpose_id: s for s in ConsentState.objects.filter(customer=customer)}
    now = timezone.now()
    pending = {
        r.purpose_id: r
        for r in OptInRequest.objects.filter(
            customer=customer, confirmed_at__isnull=True, expires_at__gt=now
        ).order_by("created_at")
    }
    return [
        PurposeView(purpose=p, state=states.get(p.pk), pending=pending.get(p.pk))
        for p in purpose_list_active()
    ]


def consent_history_for_customer(*, customer: Customer) -> QuerySet[ConsentEvent]:
    return (
        ConsentEvent.objects.filter(customer=customer)
        .select_related("purpose")
        .order_by("-created_at", "-pk")
    )


def consent_receipts_for_customer(*, customer: Customer) -> dict[str, Any]:
    """Every consent event of the customer as receipts (JSON-ready)."""
    return {
        "customer": str(customer.pk),
        "generated_at": timezone.now().isoformat(),
        "receipts": [
            {
                "receipt": event.pk,
                "purpose": event.purpose.code,
                "decision": "granted" if event.granted else "withdrawn",
                "at": event.created_at.isoformat(),
                "notice_version": event.notice_version,
                "source": event.source,
                "by": "you"
                if event.actor_id is None or event.actor_id == customer.user_id
                else "staff on your behalf",
            }
            for event in consent_history_for_customer(customer=customer).order_by(
                "created_at", "pk"
            )
        ],
    }


def consent_state_replay_matches(*, customer: Customer) -> bool:
    """True when the state table equals a replay of the events (tests, checks)."""
    replay: dict[int, bool] = {}
    for event in ConsentEvent.objects.filter(customer=customer).order_by("pk"):
        replay[event.purpose_id] = event.granted
    state = dict(
        ConsentState.objects.filter(customer=customer).values_list(
            "purpose_id", "granted"
        )
    )
    return replay == state


def notice_pending_review(*, customer: Customer) -> PrivacyNotice | None:
    """The newest notice in force with a material change the customer has not seen."""
    current = notice_current()
    if current is None:
        return None
    material = (
        NoticeChange.objects.filter(material=True, notice__published_at__isnull=False)
        .filter(notice__effective_at__lte=timezone.now())
        .exclude(
            notice__in=NoticeAcknowledgement.objects.filter(customer=customer).values(
                "notice"
            )
        )
        .select_related("notice")
        .order_by("-notice__version")
        .first()
    )
    return material.notice if material else None


# The audience SQL below leaves out erased customers with `NOT IN (SELECT id ... WHERE
# erased_at IS NOT NULL)`: they are few and indexed apart (customers_erased_idx), so a
# hashed NOT IN is far cheaper than joining every customer row.


def audience_granted_filter(purpose: Purpose) -> Q:
    return Q(
        purpose=purpose, granted=True, notice_version__gte=purpose.min_notice_version
    )


def audience_allowed_ids(*, purpose: Purpose, customer_ids: list[UUID]) -> list[UUID]:
    """Which of these customers may be contacted for the purpose right now."""
    if connection.vendor == "postgresql":
        # Up to 100,000 ids: one binary array parameter, not 100,000 quoted literals.
        with server_cursor() as cursor:
            cursor.execute(
                "SELECT customer_id FROM consent_consentstate WHERE purpose_id = %b "
                "AND granted AND notice_version >= %b AND customer_id = ANY(%b) "
                "AND customer_id NOT IN "
                "(SELECT id FROM customers_customer WHERE erased_at IS NOT NULL)",
                [purpose.pk, purpose.min_notice_version, list(customer_ids)],
            )
            return [row[0] for row in cursor.fetchall()]
    return list(
        ConsentState.objects.filter(audience_granted_filter(purpose))
        .filter(customer_id__in=customer_ids, customer__erased_at__isnull=True)
        .values_list("customer_id", flat=True)
    )


def audience_queryset(*, purpose: Purpose) -> QuerySet[ConsentState]:
    """Everyone who may be contacted for the purpose, by customer id."""
    return (
        ConsentState.objects.filter(audience_granted_filter(purpose))
        .filter(customer__erased_at__isnull=True)
        .order_by("customer_id")
    )


def audience_copy_sql(*, purpose: Purpose) -> tuple[str, list[Any]]:
    """The same audience as a COPY statement (streamed as CSV on PostgreSQL)."""
    return (
        "COPY (SELECT customer_id FROM consent_consentstate WHERE purpose_id = %s "
        "AND granted AND notice_version >= %s "
        "AND customer_id NOT IN "
        "(SELECT id FROM customers_customer WHERE erased_at IS NOT NULL)) "
        "TO STDOUT WITH (FORMAT csv)",
        [purpose.pk, purpose.min_notice_version],
    )
