"""AES-256-GCM sealing with a versioned storage format.

Format 1: one byte `0x01`, a random 96-bit nonce, then ciphertext and 128-bit tag.
Associated data binds each value to where it belongs (table, column, row).
"""

import logging
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from apps.crypto.errors import CryptoError, IntegrityFailure

logger = logging.getLogger(__name__)

FORMAT_V1 = 1
_V1 = bytes([FORMAT_V1])
NONCE_BYTES = 12


def seal(aead: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return _V1 + nonce + aead.encrypt(nonce, plaintext, aad)


def unseal(aead: AESGCM, blob: bytes, aad: bytes, *, where: str) -> bytes:
    """Decrypt a sealed value. Raises IntegrityFailure, never returns garbage."""
    if not blob:
        raise IntegrityFailure("A stored value is empty.", code="integrity_error")
    if blob[0] != FORMAT_V1:
        raise CryptoError(f"Unknown ciphertext format version {blob[0]}.")
    try:
        return aead.decrypt(blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :], aad)
    except InvalidTag:
        # `where` names table, column and row id: never the value.
        logger.error("crypto.integrity_failure", extra={"where": where})
        raise IntegrityFailure(
            "Stored data failed its integrity check; the failure was logged."
        ) from None
