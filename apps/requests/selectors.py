from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from django.db.models import Count, Q, QuerySet
from django.utils import dateformat, timezone, translation
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.translation import gettext, gettext_noop

from apps.consent.models import Purpose
from apps.consent.selectors import PurposeText, purpose_text
from apps.core.errors import NotFound
from apps.customers.models import Customer
from apps.customers.selectors import BackupCopiesEnd, customer_backup_copies_end
from apps.inventory.selectors import recipients_received_data
from apps.requests.models import OPEN_STATUSES, DataRequest, RequestKind
from apps.retention.models import LegalHold
from apps.webhooks.selectors import art19_passed_on_for_request


def request_queue(*, include_closed: bool = False) -> QuerySet[DataRequest]:
    """Requests by due date, open ones first (the privacy admins' queue)."""
    requests = DataRequest.objects.all()
    if not include_closed:
        requests = requests.filter(status__in=OPEN_STATUSES)
    return requests.order_by("due_at")


def requests_changed_since(*, since: datetime | None) -> QuerySet[DataRequest]:
    """Every request, open and closed, changed at or after `since` (all without it),
    by `updated_at`, which every write of the row moves: opening, each transition, an
    extension, completion, the export. Unordered: the caller orders and pages by
    ("updated_at", "pk") (index dsr_updated)."""
    requests = DataRequest.objects.all()
    if since is not None:
        requests = requests.filter(updated_at__gte=since)
    return requests


def request_overdue_count() -> int:
    return DataRequest.objects.filter(
        status__in=OPEN_STATUSES, due_at__lte=timezone.now()
    ).count()


def request_get(*, request_id: UUID | str) -> DataRequest:
    """One data request by id. Raises NotFound."""
    try:
        return DataRequest.objects.get(pk=request_id)
    except (DataRequest.DoesNotExist, ValueError, TypeError):
        raise NotFound("No such request.") from None


def requests_for_customer(*, customer: Customer) -> QuerySet[DataRequest]:
    """The customer's requests, newest first."""
    return DataRequest.objects.filter(customer=customer).order_by("-received_at")


# Outcomes written with values in them: the English one is stored (`outcome`, for
# staff and every reader), with its parts (`outcome_parts`) for My data to say it in
# the customer's language (request_outcome_text).
MARKETING_OBJECTION_TEXT = gettext_noop(
    "We no longer use your data for direct marketing ({purposes}): {withdrawn} Our "
    "staff cannot turn any of them on; only you can, on your privacy page."
)
MARKETING_WITHDRAWN_TEXT = gettext_noop(
    "we withdrew what you had agreed to or asked for ({names})."
)
MARKETING_NOTHING_TEXT = gettext_noop(
    "you had agreed to none of it, so nothing was withdrawn."
)
HELD_REASON_OUTCOME = gettext_noop(
    "We cannot erase your data yet: the law requires us to keep it ({reason}). "
    "Meanwhile its use is restricted to that obligation: we keep it, and do not use "
    "it for marketing or share it, and we will tell you before the restriction is "
    "lifted. Please ask again once that obligation has ended."
)
OUTCOME_MARKETING_OBJECTION = "marketing_objection"
OUTCOME_HELD_REASON = "held_reason"
# Amanah's sentences after a staff note (the note kept as written, before them).
OUTCOME_SENTENCES = "sentences"
RESTRICTED_OUTCOME = gettext_noop(
    "The use of your data is restricted: we keep it, and use it only for legal "
    "claims, not for marketing or sharing. We will tell you before the restriction "
    "is lifted."
)
RESTRICTION_LIFTED_TEXT = gettext_noop(
    "The use of your data was restricted from {placed} until {lifted}, when we "
    "lifted the restriction after telling you."
)
OBJECTION_UPHELD_BARE_TEXT = gettext_noop(
    "We upheld your objection: we no longer use your data for what you objected to."
)
OBJECTION_REFUSED_TEXT = gettext_noop(
    "The use of your data stays restricted until we tell you we lift it."
)
OBJECTION_UPHELD_OUTCOME = gettext_noop(
    "We upheld your objection: we no longer use your data for what you objected "
    "to. Its use stays restricted to legal claims, and we will tell you before that "
    "restriction is lifted."
)
SENTENCES = {
    "restricted": RESTRICTED_OUTCOME,
    "lifted": RESTRICTION_LIFTED_TEXT,
    "upheld_bare": OBJECTION_UPHELD_BARE_TEXT,
    "upheld": OBJECTION_UPHELD_OUTCOME,
    "refused": OBJECTION_REFUSED_TEXT,
}


def request_outcome_text(request: DataRequest) -> str:
    """A request's outcome in the active language, for the customer: from its parts
    when it has values in it (purpose names in that language; a hold's reason as
    staff wrote it), else the stored text translated when it is one marked sentence
    (as `{% translate %}`). Escaped, ready for a page."""
    parts = request.outcome_parts or {}
    params = parts.get("params") or {}
    code = parts.get("code")
    if code == OUTCOME_MARKETING_OBJECTION:
        return _marketing_objection_text(params)
    if code == OUTCOME_SENTENCES:
        said = params.get("sentences") or []
        english = " ".join(
            SENTENCES[s["code"]].format(**s.get("params", {})) for s in said
        )
        if said and request.outcome.endswith(english):
            note = request.outcome.removesuffix(english).strip()
            ours = [_sentence_text(s["code"], s.get("params") or {}) for s in said]
            return format_html_join(
                " ", "{}", ((part,) for part in [note] * bool(note) + ours)
            )
    if code == OUTCOME_HELD_REASON:
        hold = LegalHold.objects.filter(pk=params.get("hold", 0)).first()
        if hold is not None:
            # As staff wrote it, isolated (it may run the other way than the page).
            reason = format_html("<bdi>{}</bdi>", hold.reason)
            return format_html(gettext(HELD_REASON_OUTCOME), reason=reason)
    return conditional_escape(gettext(request.outcome) if request.outcome else "")


def _sentence_text(code: str, params: dict) -> str:
    text = gettext(SENTENCES[code])
    return format_html(text, **params) if params else conditional_escape(text)


def _marketing_objection_text(params: dict) -> str:
    language = translation.get_language()
    by_code = {p.code: p for p in Purpose.objects.filter(code__in=params["purposes"])}

    def names(codes: list[str]) -> str:
        shown = []
        for code in codes:
            if code not in by_code:
                continue
            text = purpose_text(by_code[code], language)
            if text.language == language:
                shown.append(conditional_escape(_name_in_sentence(text)))
            else:  # not written in this language: the English name, marked so
                name = text.name.lower()
                tag = '<span lang="{}">{}</span>'
                shown.append(format_html(tag, text.language, name))
        return format_html_join(", ", "{}", ((name,) for name in shown))

    withdrawn = (
        format_html(gettext(MARKETING_WITHDRAWN_TEXT), names=names(params["withdrawn"]))
        if params["withdrawn"]
        else gettext(MARKETING_NOTHING_TEXT)
    )
    return format_html(
        gettext(MARKETING_OBJECTION_TEXT),
        purposes=names(params["purposes"]),
        withdrawn=withdrawn,
    )


def _name_in_sentence(text: PurposeText) -> str:
    return text.name.lower() if text.language == "en" else text.name


# What an erased customer is told about the copies of their data in backups.
RESTORE_PROMISE = gettext_noop(
    "If we ever restore a backup, your erasure is applied again before the system "
    "is used."
)

# The state of the key the copies in backups are locked with (BackupsStatement.case)
# and what the customer is told about it once erased, and (`prospective`, My data) if
# erased now; %(day)s is the day. Rendered in the reader's language when shown.
_BACKUPS_SENTENCES = {
    "no_date": (
        gettext_noop(
            "Copies of your data in our backups stay readable until the key they are "
            "locked with is retired; no date is set for that yet."
        ),
        gettext_noop(
            "If your data is erased now, copies of your data in our backups stay "
            "readable until the key they are locked with is retired; no date is set "
            "for that yet."
        ),
    ),
    "destroyed": (
        gettext_noop(
            "Copies of your data in our backups were locked with a key that was "
            "destroyed on %(day)s: they can no longer be opened."
        ),
        gettext_noop(
            "If your data is erased now, copies of your data in our backups were "
            "locked with a key that was destroyed on %(day)s: they can no longer be "
            "opened."
        ),
    ),
    "to_be_destroyed": (
        gettext_noop(
            "Copies of your data in our backups are locked with a key that is due to "
            "be destroyed on %(day)s; from then on they can no longer be opened."
        ),
        gettext_noop(
            "If your data is erased now, copies of your data in our backups are "
            "locked with a key that is due to be destroyed on %(day)s; from then on "
            "they can no longer be opened."
        ),
    ),
    "retired": (
        gettext_noop(
            "Copies of your data in our backups are locked with a key that was "
            "retired on %(day)s; once our administrators have removed it from our "
            "systems, they can no longer be opened."
        ),
        gettext_noop(
            "If your data is erased now, copies of your data in our backups are "
            "locked with a key that was retired on %(day)s; once our administrators "
            "have removed it from our systems, they can no longer be opened."
        ),
    ),
    "to_be_retired": (
        gettext_noop(
            "Copies of your data in our backups are locked with a key that is due to "
            "be retired on %(day)s; our administrators then remove it from our "
            "systems, and from then on those copies can no longer be opened."
        ),
        gettext_noop(
            "If your data is erased now, copies of your data in our backups are "
            "locked with a key that is due to be retired on %(day)s; our "
            "administrators then remove it from our systems, and from then on those "
            "copies can no longer be opened."
        ),
    ),
}


@dataclass(frozen=True)
class BackupsStatement:
    unreadable_on: date | None  # the day, in TIME_ZONE; None when none is set yet
    text: str  # in the active language
    case: str = "no_date"  # a key of _BACKUPS_SENTENCES


def erasure_backups_statement(
    *, customer: Customer, prospective: bool = False
) -> BackupsStatement:
    """What `customer` is told about the copies of their data in backups once it is
    erased (the certificate), or if it were erased now (`prospective`, My data): the
    day the last of them becomes unreadable (the retirement of the master key their
    data key was last wrapped under, as the key ring does it) and what a restore does
    (`reapply_erasures`, from the journal). In the active language."""
    end = customer_backup_copies_end(customer=customer)
    case = _backups_case(end)
    unreadable_on = timezone.localdate(end.on) if end else None
    return BackupsStatement(
        unreadable_on=unreadable_on,
        text=backups_text(case, unreadable_on, prospective=prospective),
        case=case,
    )


def backups_text(case: str, day: date | None, *, prospective: bool = False) -> str:
    """The statement about backups for `case` on `day`, in the active language."""
    sentence = gettext(_BACKUPS_SENTENCES[case][1 if prospective else 0])
    if day is not None:
        sentence = sentence % {"day": dateformat.format(day, "j F Y")}
    return f"{sentence} {gettext(RESTORE_PROMISE)}"


def certificate_backups_text(certificate: dict) -> str:
    """An erasure certificate's statement about backups in the active language (the
    certificate keeps it in English, and the case and day it was made from); one
    from before the case was kept, as written."""
    case = certificate.get("backups_case")
    if case not in _BACKUPS_SENTENCES:
        return certificate.get("backups") or ""
    day = certificate.get("backups_unreadable_on")
    return backups_text(case, date.fromisoformat(day) if day else None)


def _backups_case(end: BackupCopiesEnd | None) -> str:
    if end is None:
        return "no_date"
    if end.destroyed_by_ring:
        return "destroyed" if end.done else "to_be_destroyed"
    return "retired" if end.done else "to_be_retired"


# The requests queue's due filters (`?due=`): open requests past their due date, and
# those falling due within the next 7 days.
DUE_SOON = timedelta(days=7)
DUE_FILTERS = {"overdue": "Overdue", "week": "Due within 7 days"}


def request_queue_due(*, due: str, at: datetime | None = None) -> QuerySet[DataRequest]:
    """Open requests by due date: overdue ones ("overdue"), or those due within 7
    days and not overdue yet ("week"). Raises KeyError for another filter."""
    at = at or timezone.now()
    condition = {
        "overdue": Q(due_at__lte=at),
        "week": Q(due_at__gt=at, due_at__lte=at + DUE_SOON),
    }[due]
    return request_queue().filter(condition)


def request_due_counts(*, at: datetime | None = None) -> dict[str, int]:
    """How many open requests are overdue, and how many fall due within 7 days (not
    overdue yet): one query over the open ones (index dsr_queue)."""
    at = at or timezone.now()
    return DataRequest.objects.filter(status__in=OPEN_STATUSES).aggregate(
        overdue=Count("pk", filter=Q(due_at__lte=at)),
        week=Count("pk", filter=Q(due_at__gt=at, due_at__lte=at + DUE_SOON)),
    )


@dataclass(frozen=True)
class PassedOnRow:
    """A recipient that received the customer's data, and what of this request's
    erasure or correction was passed on to it (GDPR art. 19): through its endpoint
    (`type`, `status`, `delivered_at`), or nothing (`has_endpoint` False: staff tell
    it themselves)."""

    recipient: str
    has_endpoint: bool
    type: str = ""
    status: str = ""
    delivered_at: datetime | None = None


def request_passed_on(*, request: DataRequest) -> list[PassedOnRow]:
    """Each recipient that received the customer's data (an allowed share in the
    inventory) or was sent this request's erasure or correction: one row per
    delivery to it (its status and time), or one row saying nothing went (no
    endpoint); by recipient name. Empty for other kinds of request."""
    if request.kind not in (RequestKind.ERASURE, RequestKind.RECTIFICATION):
        return []
    rows = [
        PassedOnRow(
            recipient=p.recipient,
            has_endpoint=True,
            type=p.type,
            status=p.status,
            delivered_at=p.delivered_at,
        )
        for p in art19_passed_on_for_request(request_id=request.pk)
    ]
    sent_to = {row.recipient for row in rows}
    if request.customer_id is not None:
        rows.extend(
            PassedOnRow(recipient=r.name, has_endpoint=r.has_endpoint)
            for r in recipients_received_data(customer_id=request.customer_id)
            if r.name not in sent_to
        )
    return sorted(rows, key=lambda row: row.recipient)
