"""Signatures on checkpoints, by the key the crypto app holds.

The audit app sits below crypto (docs/ARCHITECTURE.md), so it cannot import the
signing key; the crypto app registers its two functions here when it starts
(`CryptoConfig.ready`): one signs a document, the other checks one and raises a
DomainError with one readable sentence when it does not verify.
"""

from collections.abc import Callable
from typing import Any

from apps.audit.errors import AuditError

CHECKPOINT_TYPE = "amanah.audit_checkpoint"

# sign(content) -> the signed document
Sign = Callable[[dict[str, Any]], dict[str, Any]]
# verify(document, *, type, what) -> an object with the key id (`.kid`)
Verify = Callable[..., Any]

_registered: dict[str, Any] = {}


def checkpoint_signer_register(*, sign: Sign, verify: Verify) -> None:
    _registered.update(sign=sign, verify=verify)


def _get(name: str) -> Any:
    try:
        return _registered[name]
    except KeyError:
        raise AuditError(
            "No signing key is available to the audit app (the crypto app is not "
            "installed).",
            field="checkpoint",
        ) from None


def checkpoint_sign(content: dict[str, Any]) -> dict[str, Any]:
    """`content` signed (a `signature` member added). Raises DomainError."""
    sign: Sign = _get("sign")
    return sign(content)


def checkpoint_signature_verify(document: Any) -> str:
    """The id of the key `document` is signed under. Raises DomainError."""
    verify: Verify = _get("verify")
    return str(verify(document, type=CHECKPOINT_TYPE, what="an audit checkpoint").kid)
