"""Writes for data subject requests: opening with a legal due date, transitions,
exports (built by Celery, sealed, downloadable once within 24 hours), erasure with a
certificate, corrections.

Lock order (apps/core/db.py): an erasure first keeps legal holds from being placed
(retention's advisory lock); then the request, then its customer (through the customers
service), then the audit chain. Opening one locks the customer first (the request is
created after it), then what an objection changes, then the audit chain.
"""

import contextlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core import signing
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext, gettext_noop

from apps.access.services import access_log_write_full
from apps.accounts.models import Role, User
from apps.audit import services as audit
from apps.consent.selectors import purpose_list_direct_marketing
from apps.consent.services import consent_object_to_marketing
from apps.core.errors import Conflict, DomainError, Forbidden, NotFound
from apps.core.links import public_url
from apps.core.reasons import reason_require
from apps.crypto.keys import key_scope, open_with, seal_with
from apps.customers.models import Customer, Restriction, RestrictionSource
from apps.customers.registry import PII_FIELD_NAMES, PII_FIELDS
from apps.customers.selectors import (
    customer_get,
    customer_language,
    customer_restriction_of_request,
)
from apps.customers.services import (
    customer_lock,
    customer_lock_erased_at,
    customer_restrict,
    customer_update,
    free_text_check,
)
from apps.customers.validation import refuse_card_numbers
from apps.incidents.deadlines import EU
from apps.requests.models import (
    OPEN_STATUSES,
    DataRequest,
    ObjectionTo,
    RequestEvent,
    RequestKind,
    RequestStatus,
)
from apps.requests.selectors import (
    HELD_REASON_OUTCOME,
    MARKETING_NOTHING_TEXT,
    MARKETING_OBJECTION_TEXT,
    MARKETING_WITHDRAWN_TEXT,
    OBJECTION_UPHELD_OUTCOME,  # noqa: F401 (tests check the texts against it)
    OUTCOME_HELD_REASON,
    OUTCOME_MARKETING_OBJECTION,
    OUTCOME_SENTENCES,
    SENTENCES,
    erasure_backups_statement,
)
from apps.retention.models import LegalHold
from apps.retention.selectors import hold_covering_customer
from apps.retention.services import customer_erase, holds_freeze
from apps.webhooks.services import event_emit

logger = logging.getLogger(__name__)

# The requests a worker carries out as soon as they are received.
AUTOMATIC_KINDS = (RequestKind.ACCESS, RequestKind.PORTABILITY, RequestKind.ERASURE)

EXPORT_SALT = "amanah.dsr.export"
EXPORT_HOURS = 24


class RequestError(DomainError):
    code = "request_invalid"


@dataclass(frozen=True)
class DueRule:
    """The time a law gives to answer a request, with its source (as an incident's
    `DeadlineRule` carries its `legal_source`), and the one extension it allows."""

    regime: str
    countries: frozenset[str]  # empty: any country (with `region`, or the default)
    region: str
    period: timedelta | relativedelta
    legal_source: str
    extension: timedelta | relativedelta | None = None
    extension_text: str = ""

    def applies(self, *, country: str, region: str) -> bool:
        if self.region:
            return region == self.region
        return not self.countries or country in self.countries


# First match wins: a region's rule before its country's, the default last.
DUE_RULES: tuple[DueRule, ...] = (
    DueRule(
        "CCPA",
        frozenset(),
        "US-CA",
        timedelta(days=45),
        "CCPA, Cal. Civ. Code §1798.130(a)(2)",
        extension=timedelta(days=45),
        extension_text="45 more days, once",
    ),
    DueRule(
        "UU PDP",
        frozenset({"ID"}),
        "",
        timedelta(hours=72),
        "UU No. 27/2022 (PDP) art. 32(2)",
    ),
    DueRule(
        "GDPR",
        EU,
        "",
        relativedelta(months=1),
        "GDPR art. 12(3)",
        extension=relativedelta(months=2),
        extension_text="two more months, once",
    ),
    DueRule(
        "UK GDPR",
        frozenset({"GB"}),
        "",
        relativedelta(months=1),
        "UK GDPR art. 12(3)",
        extension=relativedelta(months=2),
        extension_text="two more months, once",
    ),
    DueRule(
        "LGPD",
        frozenset({"BR"}),
        "",
        timedelta(days=15),
        "LGPD art. 19 II",
    ),
    DueRule(
        "default",
        frozenset(),
        "",
        timedelta(days=30),
        "Amanah's default, not a legal period",
    ),
)
RULES_BY_REGIME = {rule.regime: rule for rule in DUE_RULES}


def due_rule_for(*, country: str, region: str) -> DueRule:
    """The rule that sets the answer time for a customer of `country` and `region`."""
    return next(r for r in DUE_RULES if r.applies(country=country, region=region))


def due_rule_of(*, regime: str) -> DueRule:
    """The rule a request was opened under, by its regime's name (the default's for
    a name no rule has any more)."""
    return RULES_BY_REGIME.get(regime, RULES_BY_REGIME["default"])


def regime_and_due(
    *, country: str, region: str, received: datetime
) -> tuple[str, datetime]:
    """The law that sets the answer time, and the due date it gives."""
    rule = due_rule_for(country=country, region=region)
    return rule.regime, received + rule.period


def _customer_of(request: DataRequest) -> Customer | None:
    """The request's customer, to check notes against; None once the row is gone."""
    if request.customer_id is None:
        return None
    return customer_get(customer_id=request.customer_id)


def _customer_required(request: DataRequest) -> Customer:
    """The request's customer. Raises NotFound once the row is gone."""
    customer = _customer_of(request)
    if customer is None:
        raise NotFound("No such customer.")  # as customer_get says it
    return customer


def _completing(request: DataRequest) -> None:
    """Lock the customer's row of a request about to be completed, after the
    request's and before anything else (apps/core/db.py): its completion event is
    emitted under it. A customer deleted meanwhile is left alone."""
    if request.customer_id is None:
        return
    with contextlib.suppress(Customer.DoesNotExist):
        customer_lock_erased_at(customer_id=request.customer_id)


def _event(
    request: DataRequest, actor: User | None, status: str, note: str = ""
) -> None:
    RequestEvent.objects.create(
        request=request, at=timezone.now(), actor=actor, status=status, note=note
    )
    if status == RequestStatus.COMPLETED and request.customer_id is not None:
        # Every completion passes here, in its transaction (webhooks' outbox), before
        # the audit chain; every caller holds the customer's row (`_completing`), so
        # the customer's events keep the order of their commits.
        event_emit(
            type="request.completed",
            customer_id=request.customer_id,
            data={"request_id": str(request.pk), "kind": request.kind},
            request_id=request.pk,
        )


@transaction.atomic
def request_open(
    *,
    actor: User,
    customer: Customer,
    kind: str,
    verification: str = "",
    field: str = "",
    new_value: str = "",
    details: str = "",
    objection_to: str = "",
    evidence: str = "",
) -> DataRequest:
    """Open a request. Staff must say how they verified the customer's identity.
    An objection says what it is to (`objection_to`): to direct marketing it is done
    at once (`_objection_marketing`; its withdrawals carry `evidence`, the hash of the
    customer's own request, `apps.consent.services.evidence_hash`, when they object
    themselves); to another use it opens a review, the data
    restricted meanwhile (`_objection_review_open`); unsaid (the forms ask for it;
    objections from before it was asked), it waits for a privacy admin as it did.
    Raises RequestError, Conflict."""
    if kind not in RequestKind.values:
        raise RequestError(gettext("Choose what you are asking for."), field="kind")
    if objection_to and objection_to not in ObjectionTo.values:
        raise RequestError(
            gettext(
                "Say what you object to: direct marketing, or another use of your data."
            ),
            field="objection_to",
        )
    if kind != RequestKind.OBJECTION:
        objection_to = ""
    if customer.is_erased:
        raise RequestError("This customer was erased.", field="customer")
    by_staff = getattr(actor, "role", "customer") != "customer"
    if by_staff:
        reason_require(
            verification,
            field="verification",
            message="Say how you verified the customer's identity.",
            error=RequestError,
        )
    # Kept in plain text, beyond an erasure: never the customer's data.
    if verification.strip():
        free_text_check(
            text=verification,
            field="verification",
            customer=customer,
            error=RequestError,
            label="note on the check",
        )
    # The details are the customer's own words, sealed under their data key and gone
    # with it: they may name them, but hold no card number (as their record may not).
    details = details.strip()[:500]
    refuse_card_numbers({"details": details}, country=customer.country)
    if kind == RequestKind.RECTIFICATION:
        if field not in PII_FIELD_NAMES:
            raise RequestError(gettext("Choose the field to correct."), field="field")
        if not new_value.strip():
            raise RequestError(gettext("Give the correct value."), field="new_value")
    # The customer's row first (apps/core/db.py): the consent state and restriction
    # an objection changes are theirs, and the audit chain comes last. Two opens for
    # one customer queue up here, so the check below sees the other's request.
    try:
        erased_at = customer_lock_erased_at(customer_id=customer.pk)
    except Customer.DoesNotExist:
        raise NotFound("No such customer.") from None  # as customer_get says it
    if erased_at is not None:
        raise RequestError("This customer was erased.", field="customer")
    already = DataRequest.objects.filter(
        customer=customer, kind=kind, status__in=OPEN_STATUSES
    )
    if kind == RequestKind.OBJECTION:
        # One open objection per object: one to direct marketing is done at once,
        # and is never held up by a review of another use.
        already = already.filter(objection_to=objection_to)
    if objection_to != ObjectionTo.MARKETING and already.exists():
        raise Conflict(gettext("A request of this kind is already open."), field="kind")
    now = timezone.now()
    regime, due = regime_and_due(
        country=customer.country, region=customer.region, received=now
    )
    request = DataRequest(
        customer=customer,
        data_key_id=customer.data_key_id,
        kind=kind,
        regime=regime,
        received_at=now,
        due_at=due,
        opened_by=actor,
        verification=verification.strip(),
        field=field,
        details=details or None,
        objection_to=objection_to,
        # The language the customer asked in (a code): their emails use it when
        # they saved none. Staff asking is no choice of the customer's.
        language="" if by_staff else translation.get_language() or "",
    )
    if new_value:
        request.new_value = new_value.strip()
    request.save(force_insert=True)
    _event(
        request, actor, RequestStatus.RECEIVED, "opened by staff" if by_staff else ""
    )
    # Before this request's own audit event: what an objection changes takes its
    # locks (consent state, opt-in requests) before the audit chain.
    if objection_to == ObjectionTo.MARKETING:
        _objection_marketing(
            actor=actor, request=request, customer=customer, evidence=evidence
        )
    elif objection_to == ObjectionTo.OTHER:
        _objection_review_open(actor=actor, request=request, customer=customer)
    audit.record(
        actor=actor,
        action="request.opened",
        target=request,
        details={
            "kind": kind,
            "regime": regime,
            "by_staff": by_staff,
            **({"objection_to": objection_to} if objection_to else {}),
        },
    )
    if kind in AUTOMATIC_KINDS:
        from apps.requests.tasks import request_process_task

        # Robust: a broker that cannot take it now leaves the request received, and
        # the beat's `requests_process_stalled` picks it up.
        transaction.on_commit(
            lambda: request_process_task.delay(str(request.pk)), robust=True
        )
    return request


# Restriction (GDPR art. 18) and objection (art. 21) ---------------------------------

# The stated purposes restricted data stays usable for (besides storage), by what
# restricted it: short and the same under every law. A reveal's reason must name the
# purpose's ground, its text before any ":", and for a legal hold's (`_held_purpose`)
# the hold, its text after (apps/access/services/reveals.py).
RESTRICTION_PURPOSE_REQUEST = "legal claims"
RESTRICTION_PURPOSE_OBJECTION = "legal claims"

RESTRICTED_TEXT = (
    "The use of your data is restricted: we keep it, and use it only for {purpose}, "
    "not for marketing or sharing. We will tell you before the restriction is lifted."
)
OBJECTION_REVIEW_TEXT = (
    "We are reviewing your objection. Until we answer, the use of your data is "
    "restricted: we keep it, and use it only for {purpose}."
)
OBJECTION_UPHELD_TEXT = (
    "We upheld your objection: we no longer use your data for what you objected "
    "to. Its use stays restricted to {purpose}, and we will tell you before that "
    "restriction is lifted."
)
# The two above with their fixed purpose (RESTRICTION_PURPOSE_OBJECTION), as stored:
# marked, so My data shows them translated (selectors.request_outcome_text) when no note
# of the staff precedes them (the upheld one is selectors.OBJECTION_UPHELD_OUTCOME).
OBJECTION_REVIEW_OUTCOME = gettext_noop(
    "We are reviewing your objection. Until we answer, the use of your data is "
    "restricted: we keep it, and use it only for legal claims."
)


def _objection_marketing(
    *, actor: User, request: DataRequest, customer: Customer, evidence: str = ""
) -> None:
    """GDPR art. 21(3): every direct-marketing purpose withdrawn at once (source
    `objection`), the request completed. In request_open's transaction: the customer
    (locked first), the request (created), then the customer's consent state and
    opt-in requests, then the audit chain."""
    events = consent_object_to_marketing(
        actor=actor, customer=customer, request_id=request.pk, evidence=evidence
    )
    withdrawn = ", ".join(event.purpose.name.lower() for event in events)
    purposes = list(purpose_list_direct_marketing())
    now = timezone.now()
    request.status = RequestStatus.COMPLETED
    request.completed_at = now
    request.outcome = MARKETING_OBJECTION_TEXT.format(
        purposes=", ".join(p.name.lower() for p in purposes),
        withdrawn=MARKETING_WITHDRAWN_TEXT.format(names=withdrawn)
        if events
        else MARKETING_NOTHING_TEXT,
    )
    # The same in the customer's language on My data (purposes by code).
    request.outcome_parts = {
        "code": OUTCOME_MARKETING_OBJECTION,
        "params": {
            "purposes": [p.code for p in purposes],
            "withdrawn": [event.purpose.code for event in events],
        },
    }
    request.save()
    _event(request, None, RequestStatus.COMPLETED, "marketing purposes withdrawn")


def _objection_review_open(
    *, actor: User, request: DataRequest, customer: Customer
) -> None:
    """An objection to another use: a review, due when the request is, the data
    restricted meanwhile (GDPR art. 18(1)(d)). In request_open's transaction: the
    customer (locked first), the request (created), then the audit chain."""
    customer_restrict(
        actor=actor,
        customer=customer,
        purpose=RESTRICTION_PURPOSE_OBJECTION,
        source=RestrictionSource.OBJECTION_REVIEW,
        request_id=request.pk,
    )
    request.status = RequestStatus.IN_PROGRESS
    request.outcome = OBJECTION_REVIEW_OUTCOME
    request.save()
    _event(request, None, RequestStatus.IN_PROGRESS, "review opened; restricted")


def requests_process_stalled(*, now: datetime | None = None) -> int:
    """Queue again the exports and erasures received and never processed (their task
    was lost: a broker down, a Redis that came back empty), once a task still queued
    or running would have been handed on and stopped: the broker's visibility timeout
    and a task's time limit after they were received. Returns how many."""
    from apps.requests.tasks import request_process_task

    lost_after = timedelta(
        seconds=settings.AMANAH_BROKER_VISIBILITY_TIMEOUT
        + settings.CELERY_TASK_TIME_LIMIT
    )
    before = (now or timezone.now()) - lost_after
    stalled = list(
        DataRequest.objects.filter(
            kind__in=AUTOMATIC_KINDS,
            status=RequestStatus.RECEIVED,
            received_at__lt=before,
        ).values_list("pk", flat=True)
    )
    for request_id in stalled:
        request_process_task.delay(str(request_id))
    if stalled:
        logger.warning("requests.stalled_requeued", extra={"count": len(stalled)})
    return len(stalled)


def request_details_read(*, actor: User, request: DataRequest) -> str | None:
    """What the customer wrote on the request, opened for the staff member handling it;
    the read goes to the access log (the customer sees it among the looks at their
    data). None when they wrote nothing, or it was erased with their data key."""
    details = request.details
    if not details:  # None, or ERASED
        return None
    access_log_write_full(
        actor=actor, customer_id=request.customer_id, fields=["request_details"]
    )
    return details


def _request_restriction(request: DataRequest) -> Restriction | None:
    """The restriction the request led to (in force, else the last lifted), or None.
    Under the customer's lock, which a lift takes too: called before any audit event
    of the transaction (the customer's row before the audit chain)."""
    if request.customer_id is None:
        return None
    customer_lock_erased_at(customer_id=request.customer_id)
    return customer_restriction_of_request(
        customer_id=request.customer_id, request_id=request.pk
    )


def _restriction_lifted_part(request: DataRequest) -> dict | None:
    """When the restriction the request led to was lifted (`_lifted_part`), else
    None. Under the customer's lock (`_request_restriction`)."""
    return _lifted_part(_request_restriction(request))


def _lifted_part(restriction: Restriction | None) -> dict | None:
    """From when until when a lifted restriction held, as an outcome's sentence
    (selectors.OUTCOME_SENTENCES); None for one in force or none."""
    if restriction is None or restriction.lifted_at is None:
        return None
    return {
        "code": "lifted",
        "params": {
            "placed": timezone.localdate(restriction.placed_at).isoformat(),
            "lifted": timezone.localdate(restriction.lifted_at).isoformat(),
        },
    }


def _said(parts: list[dict]) -> str:
    """Amanah's sentences of an outcome, in English (as stored)."""
    return " ".join(
        SENTENCES[part["code"]].format(**part.get("params", {})) for part in parts
    )


def _sentences(note: str, text: str) -> str:
    """The admin's note, then a fixed text, as separate sentences: a full stop after
    a note that ends without punctuation."""
    note = note.strip()
    if not note:
        return text
    if note[-1] not in ".!?…":
        note += "."
    return f"{note} {text}"


@transaction.atomic
def request_transition(
    *, actor: User, request: DataRequest, status: str, note: str = ""
) -> DataRequest:
    """Move a request on (privacy admins). Refusing needs a reason; completing a
    correction applies it; accepting (in progress) or completing a restriction
    restricts the customer's data, and refusing one accepted says the restriction
    stays (or when it was lifted). Whatever locks the customer's row does so before
    the audit chain. Raises RequestError, Forbidden."""
    if getattr(actor, "role", "") != Role.PRIVACY_ADMIN:
        raise Forbidden("Only privacy admins handle requests.")
    request = DataRequest.objects.select_for_update(no_key=True).get(pk=request.pk)
    if not request.is_open:
        raise RequestError("This request is closed.", field="status")
    if status not in RequestStatus.values or status == RequestStatus.RECEIVED:
        raise RequestError("Choose the next status.", field="status")
    if status == RequestStatus.REFUSED:
        reason_require(
            note,
            field="note",
            message="Give the reason for refusing.",
            error=RequestError,
        )
    if note.strip():  # the outcome and the history keep it for good
        free_text_check(
            text=note,
            field="note",
            customer=_customer_of(request),
            error=RequestError,
            label="note",
        )
    if status == RequestStatus.COMPLETED:
        _completing(request)
    if status == RequestStatus.COMPLETED and request.kind == RequestKind.RECTIFICATION:
        customer = _customer_required(request)
        customer_update(
            actor=actor,
            customer=customer,
            data={request.field: request.new_value},
            request_id=request.pk,
        )
    outcome = note.strip()
    # Amanah's sentences after the note, for My data in the customer's language.
    parts: list[dict] = []
    if request.kind == RequestKind.RESTRICTION and status in (
        RequestStatus.IN_PROGRESS,
        RequestStatus.COMPLETED,
    ):
        # Read before customer_restrict audits (the customer's row before the audit
        # chain); it returns a lifted restriction as it is, so this stays true.
        lifted = (
            _restriction_lifted_part(request)
            if status == RequestStatus.COMPLETED
            else None
        )
        # Accepting or completing it restricts, once: the request's restriction is
        # returned as it is, in force or lifted by a privacy admin meanwhile (never
        # placed again).
        restriction = customer_restrict(
            actor=actor,
            customer=_customer_required(request),
            purpose=RESTRICTION_PURPOSE_REQUEST,
            source=RestrictionSource.REQUEST,
            request_id=request.pk,
        )
        if status == RequestStatus.COMPLETED:
            if lifted:
                parts = [lifted]
            elif restriction.purpose == RESTRICTION_PURPOSE_REQUEST:
                parts = [{"code": "restricted"}]
            said = (
                _said(parts)
                if parts
                else RESTRICTED_TEXT.format(purpose=restriction.purpose)
            )
            outcome = _sentences(outcome, said)
    elif request.kind == RequestKind.RESTRICTION and status == RequestStatus.REFUSED:
        # Refused once accepted: the restriction placed then stays until a privacy
        # admin lifts it, the customer told first (GDPR art. 18(3)); or it was lifted.
        placed = _request_restriction(request)
        if placed is not None:
            parts = [_lifted_part(placed) or {"code": "refused"}]
            outcome = _sentences(outcome, _said(parts))
    if request.kind == RequestKind.OBJECTION and request.objection_to == (
        ObjectionTo.OTHER
    ):
        # Upheld, the restriction of the review stays; refused, it stays until a
        # privacy admin lifts it, the customer told first (GDPR art. 18(3)).
        # Unless a privacy admin lifted it meanwhile: then the outcome says when.
        lifted = _restriction_lifted_part(request)
        if status == RequestStatus.COMPLETED:
            parts = (
                [{"code": "upheld_bare"}, lifted] if lifted else [{"code": "upheld"}]
            )
            outcome = _sentences(outcome, _said(parts))
        elif status == RequestStatus.REFUSED:
            parts = [lifted or {"code": "refused"}]
            outcome = _sentences(outcome, _said(parts))
    request.status = status
    if status in (RequestStatus.COMPLETED, RequestStatus.REFUSED):
        request.completed_at = timezone.now()
        request.outcome = outcome
        if parts:
            request.outcome_parts = {
                "code": OUTCOME_SENTENCES,
                "params": {"sentences": parts},
            }
    request.save()
    _event(request, actor, status, note.strip()[:500])
    audit.record(
        actor=actor,
        action="request.status_changed",
        target=request,
        details={"status": status},
    )
    return request


@transaction.atomic
def request_extend(*, actor: User, request: DataRequest, reason: str) -> DataRequest:
    """Extend the due date once, by what the request's law allows (GDPR art. 12(3):
    two months; CCPA: 45 days), privacy admins, an open request. Raises
    RequestError, Forbidden."""
    if getattr(actor, "role", "") != Role.PRIVACY_ADMIN:
        raise Forbidden("Only privacy admins handle requests.")
    request = DataRequest.objects.select_for_update(no_key=True).get(pk=request.pk)
    if not request.is_open:
        raise RequestError("This request is closed.", field="status")
    rule = due_rule_of(regime=request.regime)
    if rule.extension is None:
        raise RequestError(
            f"This request's rule ({rule.regime}) allows no extension.", field="regime"
        )
    if request.extended:
        raise RequestError("The extension was already used.")
    reason_require(
        reason,
        field="note",
        message="Give the reason for the extension.",
        error=RequestError,
    )
    free_text_check(
        text=reason,
        field="note",
        customer=_customer_of(request),
        error=RequestError,
    )
    request.due_at = request.due_at + rule.extension
    request.extended = True
    request.save(update_fields=["due_at", "extended"])
    _event(request, actor, request.status, f"extended: {reason.strip()[:400]}")
    audit.record(actor=actor, action="request.extended", target=request)
    return request


@transaction.atomic
def request_handle(
    *, actor: User, request: DataRequest, status: str, note: str, extend: bool
) -> DataRequest:
    """What the request's page posts: the extension (its reason the note) and a
    status change, either or both, together or not at all. The status change first:
    it may lock the customer's row, which comes before the audit chain the extension
    takes (apps/core/db.py); the extension touches only the request, locked already.
    A request being closed is not extended. Raises RequestError, Forbidden."""
    if not status and not extend:
        raise RequestError(
            "Choose the next status, or use the extension.", field="status"
        )
    if extend and status in (RequestStatus.COMPLETED, RequestStatus.REFUSED):
        raise RequestError(
            "A request being closed is not extended: use the extension or close it.",
            field="status",
        )
    if status:
        request = request_transition(
            actor=actor, request=request, status=status, note=note
        )
    if extend:
        request = request_extend(actor=actor, request=request, reason=note)
    return request


# Processing (Celery) -----------------------------------------------------------------


def request_process(*, request_id: Any) -> None:
    """Do what an access, portability or erasure request asks. Idempotent."""
    request = DataRequest.objects.filter(pk=request_id).first()
    if request is None or not request.is_open:
        return
    if request.kind == RequestKind.ERASURE:
        erasure_execute(request=request)
    else:
        export_build(request=request)


def _export_aad(request: DataRequest) -> bytes:
    return f"amanah:dsr-export:{request.pk}".encode()


def export_build(*, request: DataRequest) -> None:
    """Build the customer's export (ZIP: JSON and a readable HTML page), seal it under
    their data key, and email them a link that works once, within 24 hours: all in
    `customer_language` (their saved one, else the one the request came in, ...)."""
    from apps.requests.export import export_contents, export_page

    with key_scope():
        customer = _customer_required(request)
        language = customer_language(customer, requested=request.language)
        # The whole file in the customer's language: headings, labels, purposes, dates.
        with translation.override(language):
            contents = export_contents(customer=customer, language=language)
            page = export_page(contents=contents, language=language)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(
                "my-data.json", json.dumps(contents, indent=2, default=str)
            )
            archive.writestr("my-data.html", page)
        blob = seal_with(customer.data_key, buffer.getvalue(), _export_aad(request))
        email = customer.email
    with transaction.atomic():
        request = DataRequest.objects.select_for_update(no_key=True).get(pk=request.pk)
        _completing(request)
        request.export_blob = blob
        request.export_ready_at = timezone.now()
        request.status = RequestStatus.COMPLETED
        request.completed_at = request.export_ready_at
        # Stored in English; marked so that pages can show it translated.
        request.outcome = gettext_noop(
            "Your data is ready to download (once, within 24 hours)."
        )
        request.save()
        _event(request, None, RequestStatus.COMPLETED, "export ready")
        audit.record(
            actor=None,
            action="request.export_ready",
            target=request,
            details={"bytes": len(blob)},
        )
        link = public_url("portal:request-download", args=[export_token(request)])

        def send() -> None:
            with translation.override(language):
                send_mail(
                    subject=gettext("Your data is ready"),
                    message=gettext(
                        "The copy of your data you asked for is ready. Sign in and "
                        "download it within %(hours)s hours (it works once): %(link)s"
                    )
                    % {"hours": EXPORT_HOURS, "link": link},
                    from_email=None,
                    recipient_list=[email] if email else [],
                )

        transaction.on_commit(send)


def export_token(request: DataRequest) -> str:
    """A signed token naming the request (no PII), for the download link."""
    return signing.TimestampSigner(salt=EXPORT_SALT).sign(str(request.pk))


def export_download(*, token: str, customer: Customer) -> tuple[DataRequest, bytes]:
    """The export's bytes, once: the file is deleted as it is handed over, or at the
    first try after 24 hours. Raises RequestError (tampered, expired, used, or someone
    else's)."""
    try:
        request_id = signing.TimestampSigner(salt=EXPORT_SALT).unsign(
            token, max_age=timedelta(hours=EXPORT_HOURS)
        )
    except signing.SignatureExpired:
        raise RequestError(
            gettext("This download link has expired; ask for a new copy.")
        ) from None
    except signing.BadSignature:
        raise RequestError(gettext("This download link is not valid.")) from None
    with transaction.atomic():
        request = (
            DataRequest.objects.select_for_update(no_key=True)
            .filter(pk=request_id)
            .first()
        )
        if request is None or request.customer_id != customer.pk:
            raise RequestError(gettext("This download link is not valid."))
        blob, ready_at = request.export_blob, request.export_ready_at
        # export_build sets the two together: a file always has its ready time.
        if blob is None or ready_at is None:
            raise RequestError(
                gettext("This file was already downloaded; ask for a new copy.")
            )
        expired = ready_at + timedelta(hours=EXPORT_HOURS) <= timezone.now()
        if expired:
            # The file goes; refused only after the commit, which a raise would undo.
            request.export_blob = None
            request.save(update_fields=["export_blob"])
        else:
            with key_scope():
                data = open_with(customer.data_key, blob, _export_aad(request))
            request.export_blob = None
            request.export_downloaded_at = timezone.now()
            request.save(update_fields=["export_blob", "export_downloaded_at"])
            audit.record(
                actor=customer.user,
                action="request.export_downloaded",
                target=request,
            )
    if expired:
        raise RequestError(
            gettext("This download link has expired; ask for a new copy.")
        )
    if data is None:
        raise RequestError(gettext("This data was erased."))
    return request, data


HELD_RESTRICTED = (
    "Meanwhile its use is restricted to that obligation: we keep it, and do not use "
    "it for marketing or share it, and we will tell you before the restriction is "
    "lifted."
)


def _held_outcome(hold: LegalHold, *, customer: Customer) -> str:
    """What a customer whose erasure `hold` stopped is told. The reason of a hold on
    them was written for them, and checked against their own values when it was
    placed (`hold_place`): it is quoted. A hold on a whole kind of record (all
    customers' data, closed accounts, inactive customers) was placed for reasons of
    its own, an investigation that may name someone else, checked by shape only:
    every customer it covers would read it, so it is not quoted."""
    if hold.customer_id == customer.pk:
        return HELD_REASON_OUTCOME.format(reason=hold.reason)
    return HELD_OUTCOME


HELD_OUTCOME = gettext_noop(
    "We cannot erase your data yet: a legal obligation requires us to keep it. "
    "Meanwhile its use is restricted to that obligation: we keep it, and do not use "
    "it for marketing or share it, and we will tell you before the restriction is "
    "lifted. Please ask again once that obligation has ended."
)


def _held_purpose(hold: LegalHold, *, customer: Customer) -> str:
    """The purpose a held customer's data stays usable for: the hold's reason when
    the hold is on them (written for them, and checked against their values), else
    the hold by number (a wider hold's reason may name someone else)."""
    generic = f"legal claims: legal hold {hold.pk}"
    if hold.customer_id != customer.pk:
        return generic
    purpose = f"legal claims: {hold.reason}"[:300]
    try:
        free_text_check(text=purpose, field="purpose", customer=customer)
    except DomainError:
        return generic
    return purpose


# How an erasure certificate says the data was erased (translated where shown).
ERASURE_METHOD = gettext_noop("crypto-shredding: the key to your data was destroyed")


def _erasure_certificate(
    request: DataRequest, *, customer: Customer, erased_at: datetime, held: list
) -> dict:
    """What was erased (`held`: the fields that held a value), when, how; when the last
    copy, in a backup, becomes unreadable, and what a restore does. Certificates from
    before key epochs say `backups_expire_by` instead."""
    # Kept in English (the source), whatever language is active; My data shows the
    # method and the backups in the reader's language (from `backups_case`).
    with translation.override(settings.LANGUAGE_CODE):
        backups = erasure_backups_statement(customer=customer)
        fields = [str(spec.label) for spec in held]
        categories = sorted({str(spec.category.label) for spec in held})
    return {
        "request": str(request.pk),
        "erased_at": erased_at.isoformat(),
        "fields": fields,
        "categories": categories,
        "method": ERASURE_METHOD,
        "backups_unreadable_on": (
            backups.unreadable_on.isoformat() if backups.unreadable_on else None
        ),
        "backups": backups.text,
        "backups_case": backups.case,
    }


def erasure_execute(*, request: DataRequest) -> DataRequest:
    """Crypto-shred the customer unless a legal hold applies: then the customer's
    data is restricted to the hold's purpose (a `Restriction`, source `legal_hold`,
    in the same transaction), the request completed unerased ("restricted" in the
    certificate and audit), and the customer told why (`_held_outcome`). Nothing
    erases it when the hold ends: the customer asks again."""
    with transaction.atomic():
        # Lock order (apps/core/db.py): no hold can be placed from here to the commit,
        # then the request, then its customer.
        holds_freeze()
        request = DataRequest.objects.select_for_update(no_key=True).get(pk=request.pk)
        customer = customer_lock(customer_id=request.customer_id)
        now = timezone.now()
        # Already erased (by retention meanwhile, or reapplied from the erasure journal
        # after a restore brought this request back open): nothing is left to hold or
        # to erase; the request is completed with the erasure that happened.
        erased_at = customer.erased_at
        hold = None if erased_at else hold_covering_customer(customer=customer)
        if hold is not None:
            # The hold keeps the data: its use is restricted to that obligation, in
            # this transaction (the customer's row is held; the audit chain last).
            restriction = customer_restrict(
                actor=None,
                customer=customer,
                purpose=_held_purpose(hold, customer=customer),
                source=RestrictionSource.LEGAL_HOLD,
                request_id=request.pk,
            )
            request.outcome = _held_outcome(hold, customer=customer)
            if hold.customer_id == customer.pk:  # the reason quoted: by the hold
                request.outcome_parts = {
                    "code": OUTCOME_HELD_REASON,
                    "params": {"hold": hold.pk},
                }
            request.certificate = {
                "restricted": True,
                "at": now.isoformat(),
                "restriction": restriction.pk,
                "purpose": restriction.purpose,
            }
        else:
            held = [
                spec for spec in PII_FIELDS if getattr(customer, spec.name) is not None
            ]
            if erased_at is None:
                customer = customer_erase(
                    actor=None,
                    customer=customer,
                    cause="erasure_request",
                    request_id=request.pk,
                )
            request.certificate = _erasure_certificate(
                request, customer=customer, erased_at=erased_at or now, held=held
            )
            request.outcome = gettext_noop("Your data was erased.")
        request.status = RequestStatus.COMPLETED
        request.completed_at = now
        request.save()
        _event(
            request, None, RequestStatus.COMPLETED, "restricted" if hold else "erased"
        )
        audit.record(
            actor=None,
            action="request.erasure_restricted" if hold else "request.erasure_done",
            target=request,
        )
    return request
