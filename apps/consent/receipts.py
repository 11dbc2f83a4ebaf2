"""Signed consent receipts: one per ledger event, verifiable with the public key alone.

A receipt is a signed document (apps/crypto/signing.py) of type
`amanah.consent_receipt`: the event's id, the customer's id, the purpose, the decision,
when, the notice in force, the source, who acted, and the event's evidence hash (the
keyed hash of the request's address and browser; empty when none was recorded).
The same event gives the same receipt, signature included (Ed25519 is deterministic),
as long as the signing key and AMANAH_PUBLIC_URL (the issuer) stay the same.

What is checked takes any of: one receipt, the bundle the customer downloads
(`{"receipts": [...]}`), a data export (`{"consent_receipts": [...]}`) or a list.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext, gettext_lazy, pgettext

from apps.consent.models import ConsentEvent, Purpose
from apps.crypto.errors import SignatureInvalid
from apps.crypto.signing import PublicKey, document_sign, document_verify
from apps.customers.models import Customer

RECEIPT_TYPE = "amanah.consent_receipt"
WHAT = "a consent receipt"
# Receipts one check reads at most (a bundle of a customer's whole history is far
# smaller); the page limits the bytes too.
MAX_RECEIPTS = 5000


def receipt_content(*, event: ConsentEvent, customer: Customer) -> dict[str, Any]:
    return {
        "type": RECEIPT_TYPE,
        "issuer": settings.AMANAH_PUBLIC_URL,
        "receipt": event.pk,
        "customer": str(customer.pk),
        "purpose": event.purpose.code,
        "decision": "granted" if event.granted else "withdrawn",
        "at": event.created_at.isoformat(),
        "notice_version": event.notice_version,
        "source": event.source,
        "by": "you"
        if event.actor_id is None or event.actor_id == customer.user_id
        else "staff on your behalf",
        "evidence_hash": event.evidence_hash,
    }


def receipt_sign(*, event: ConsentEvent, customer: Customer) -> dict[str, Any]:
    """The event's receipt, signed. Raises KeyRingError (no signing key)."""
    return document_sign(receipt_content(event=event, customer=customer))


@dataclass(frozen=True)
class VerifiedReceipt:
    content: dict[str, Any]
    kid: str

    @property
    def attests(self) -> str:
        """What the receipt says, in one sentence."""
        c = self.content
        verb = "granted" if c.get("decision") == "granted" else "withdrew"
        by = (
            "by the customer"
            if c.get("by") == "you"
            else "by staff on the customer's behalf"
        )
        evidence = c.get("evidence_hash") or "none recorded"
        return (
            f'Customer {c.get("customer")} {verb} consent to "{c.get("purpose")}" '
            f"at {c.get('at')} under privacy notice version {c.get('notice_version')}, "
            f"{by} (source {c.get('source')}); ledger event {c.get('receipt')}, "
            f"evidence hash {evidence}; issued by {c.get('issuer')}, signed by key "
            f"{self.kid}."
        )


# How much of a key id a person reads (the whole one is in the details).
KID_SHOWN = 8


@dataclass(frozen=True)
class ReceiptReading:
    """A valid receipt as a person reads it: the purpose by name, the time as a
    time, who acted, the key by a short id; `receipt` keeps the raw fields."""

    receipt: VerifiedReceipt
    purpose: str
    at: datetime | None

    @property
    def decision(self) -> str:
        granted = self.receipt.content.get("decision") == "granted"
        return (
            pgettext("consent", "granted")
            if granted
            else pgettext("consent", "withdrawn")
        )

    @property
    def by(self) -> str:
        mine = self.receipt.content.get("by") == "you"
        return gettext("you") if mine else gettext("staff on your behalf")

    @property
    def kid_short(self) -> str:
        kid = self.receipt.kid
        return kid if len(kid) <= KID_SHOWN else f"{kid[:KID_SHOWN]}…"


def _when(value: Any) -> datetime | None:
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return at if at.tzinfo is not None else None


def receipts_readable(verified: list[VerifiedReceipt]) -> list[ReceiptReading]:
    """Each verified receipt with its purpose's name in the active language (else
    English; its code when this installation has no such purpose) and its time
    parsed (None if not ISO 8601 with a zone, then shown raw)."""
    from apps.consent.selectors import purpose_text

    codes = {str(r.content.get("purpose")) for r in verified}
    language = translation.get_language()
    names = {
        purpose.code: purpose_text(purpose, language).name
        for purpose in Purpose.objects.filter(code__in=codes)
    }
    return [
        ReceiptReading(
            receipt=r,
            purpose=names.get(str(r.content.get("purpose")))
            or str(r.content.get("purpose")),
            at=_when(r.content.get("at")),
        )
        for r in verified
    ]


# The signature checks' sentences, by `SignatureInvalid.reason`, for a consent
# receipt and in the active language (the English is document_verify's own).
RECEIPT_ERRORS = {
    "not_a_document": gettext_lazy("This is not a consent receipt."),
    "unsigned": gettext_lazy("This consent receipt is not signed."),
    "malformed_header": gettext_lazy(
        "This consent receipt's signature is malformed (it needs alg EdDSA, a kid "
        "and a value)."
    ),
    "malformed_value": gettext_lazy(
        "This consent receipt's signature is malformed (its value is not a "
        "base64url Ed25519 signature)."
    ),
    "malformed_text": gettext_lazy(
        "This consent receipt cannot be read: it holds text that is not valid "
        "Unicode, so it was not signed as it is."
    ),
    "unknown_key": gettext_lazy(
        "This consent receipt is signed by an unknown key (kid %(kid)s), not one "
        "this installation publishes."
    ),
    "unknown_key_file": gettext_lazy(
        "This consent receipt is signed by an unknown key (kid %(kid)s), not in "
        "the key file."
    ),
    "bad_signature": gettext_lazy(
        "This consent receipt's signature does not match its content: it was "
        "altered after it was signed."
    ),
}


def _receipt_error(exc: SignatureInvalid) -> str:
    """The check's sentence for a receipt in the active language (else as raised)."""
    text = RECEIPT_ERRORS.get(exc.reason)
    return str(text) % {"kid": exc.kid} if text is not None else exc.message


def _documents(data: Any) -> tuple[list[Any], bool]:
    """The receipts in `data`, and whether it was a bundle."""
    if isinstance(data, dict) and "type" in data:
        return [data], False
    if isinstance(data, dict):
        for name in ("receipts", "consent_receipts"):
            if isinstance(data.get(name), list):
                return data[name], True
    if isinstance(data, list):
        return data, True
    raise SignatureInvalid(str(RECEIPT_ERRORS["not_a_document"]), code="not_a_document")


def receipts_verify(
    data: Any, *, keys: list[PublicKey] | None = None
) -> list[VerifiedReceipt]:
    """Check every receipt in `data` (parsed JSON) against this installation's
    public keys (or `keys`). Raises SignatureInvalid naming the first that fails."""
    documents, bundle = _documents(data)
    if not documents:
        raise SignatureInvalid(gettext("The file holds no receipts."), code="empty")
    if len(documents) > MAX_RECEIPTS:
        raise SignatureInvalid(
            gettext("The file holds more than %(most)s receipts; check it in parts.")
            % {"most": MAX_RECEIPTS},
            code="too_many",
        )
    verified = []
    for number, document in enumerate(documents, start=1):
        try:
            result = document_verify(document, type=RECEIPT_TYPE, what=WHAT, keys=keys)
        except SignatureInvalid as exc:
            message = _receipt_error(exc)
            if bundle:
                message = gettext("Receipt %(number)s of %(total)s: %(error)s") % {
                    "number": number,
                    "total": len(documents),
                    "error": message,
                }
            raise SignatureInvalid(
                message, code=exc.code, reason=exc.reason, kid=exc.kid
            ) from exc
        verified.append(VerifiedReceipt(content=result.content, kid=result.kid))
    return verified
