from apps.core.errors import DomainError


class CryptoError(DomainError):
    code = "crypto_error"


class KeyRingError(CryptoError):
    """The key ring is malformed, or lacks a master key version that data names."""

    status, code = 500, "key_ring"


class IntegrityFailure(CryptoError):
    """A stored value failed authentication: tampered with, moved, or corrupted."""

    status, code = 409, "integrity_error"


class SignatureInvalid(CryptoError):
    """A signed document (a consent receipt, an audit checkpoint) is not what it
    claims: not one, unsigned, signed by an unknown key, or altered. `reason` says
    which check failed (finer than `code`) and `kid` names an unknown key, so that a
    caller can word the message for its readers (the receipt check, translated)."""

    code = "signature_invalid"

    def __init__(
        self,
        msg: str,
        *,
        field: str | None = None,
        code: str = "",
        reason: str = "",
        kid: str = "",
    ) -> None:
        super().__init__(msg, field=field, code=code)
        self.reason = reason or self.code
        self.kid = kid
