"""AES-256-GCM sealing with a versioned storage format.

Format 1: one byte `0x01`, a random 96-bit nonce, then ciphertext and 128-bit tag.
Associated data binds each value to where it belongs (table, column, row).
"""

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from apps.crypto.errors import CryptoError, IntegrityFailure

FORMAT_V1 = 1
_V1 = bytes([FORMAT_V1])
NONCE_BYTES = 12
_BODY = 1 + NONCE_BYTES
INTEGRITY_MESSAGE = "Stored data failed its integrity check; the failure was logged."


def seal(aead: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return _V1 + nonce + aead.encrypt(nonce, plaintext, aad)


def unseal(aead: AESGCM, blob: bytes, aad: bytes) -> bytes:
    """Decrypt a sealed value. Raises IntegrityFailure (the caller logs where), never
    returns garbage; CryptoError for a format this code does not know."""
    if not blob or blob[0] != FORMAT_V1:
        if blob:
            raise CryptoError(f"Unknown ciphertext format version {blob[0]}.")
        raise IntegrityFailure(INTEGRITY_MESSAGE)
    try:
        return aead.decrypt(blob[1:_BODY], blob[_BODY:], aad)
    except InvalidTag:
        raise IntegrityFailure(INTEGRITY_MESSAGE) from None
