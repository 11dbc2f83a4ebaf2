"""Signatures on checkpoints, by the key the crypto app holds.

The audit app sits below crypto (docs/ARCHITECTURE.md), so it cannot import the
signing key; the crypto app registers its two functions here when it starts
(`CryptoConfig.ready`): one signs a document, one checks one and raises a
DomainError with one readable sentence when it does not verify, and one reads the
public keys of a JWKS (a saved copy of the published keys).
"""

from collections.abc import Callable
from typing import Any

from apps.audit.errors import AuditError

CHECKPOINT_TYPE = "amanah.audit_checkpoint"

# sign(content) -> the signed document
Sign = Callable[[dict[str, Any]], dict[str, Any]]
# verify(document, *, type, what, keys=None) -> an object with the key id (`.kid`)
Verify = Callable[..., Any]
# jwks_keys(parsed JWKS) -> the public keys `verify` takes as `keys`
JwksKeys = Callable[[Any], Any]

_registered: dict[str, Any] = {}


def checkpoint_signer_register(
    *, sign: Sign, verify: Verify, jwks_keys: JwksKeys
) -> None:
    _registered.update(sign=sign, verify=verify, jwks_keys=jwks_keys)


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


def checkpoint_signature_verify(document: Any, *, jwks: Any = None) -> str:
    """The id of the key `document` is signed under: one of this installation's
    public keys, or of `jwks` (a parsed JWKS) when given. Raises DomainError."""
    verify: Verify = _get("verify")
    keys = None if jwks is None else _get("jwks_keys")(jwks)
    return str(
        verify(
            document, type=CHECKPOINT_TYPE, what="an audit checkpoint", keys=keys
        ).kid
    )
