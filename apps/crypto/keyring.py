"""Master keys (KEKs) from AMANAH_MASTER_KEYS and the blind-index key.

`AMANAH_MASTER_KEYS` is `version:base64key` pairs separated by commas, e.g.
`2:<base64>,1:<base64>`; each key is 256 bits; the highest version is the active one.
Settings are read at call time; the parsed ring is cached per distinct setting value.
"""

import base64
import binascii
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from apps.crypto.errors import KeyRingError

KEY_BYTES = 32


def _decode_key(text: str, *, what: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyRingError(f"{what} is not valid base64.") from exc
    if len(key) != KEY_BYTES:
        raise KeyRingError(f"{what} must be 32 bytes (256 bits), not {len(key)}.")
    return key


@dataclass(frozen=True)
class KeyRing:
    keys: dict[int, bytes] = field(repr=False)  # never printed
    _ciphers: dict[int, AESGCM] = field(default_factory=dict, compare=False, repr=False)

    @property
    def active_version(self) -> int:
        return max(self.keys)

    @property
    def active_key(self) -> bytes:
        return self.keys[self.active_version]

    def get(self, version: int) -> bytes:
        try:
            return self.keys[version]
        except KeyError:
            raise KeyRingError(
                f"Master key version {version} is not in AMANAH_MASTER_KEYS."
            ) from None

    def aead(self, version: int) -> AESGCM:
        """The cipher for a master key version, built once. Raises KeyRingError."""
        cipher = self._ciphers.get(version)
        if cipher is None:
            cipher = self._ciphers[version] = AESGCM(self.get(version))
        return cipher


@lru_cache(maxsize=8)
def _parse_ring(raw: str) -> KeyRing:
    keys: dict[int, bytes] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        version_text, sep, key_text = part.partition(":")
        if not sep or not version_text.strip().isdigit() or int(version_text) < 1:
            raise KeyRingError(
                "AMANAH_MASTER_KEYS entries must look like '<version>:<base64 key>' "
                "with a positive version."
            )
        version = int(version_text)
        if version in keys:
            raise KeyRingError(f"AMANAH_MASTER_KEYS names version {version} twice.")
        keys[version] = _decode_key(
            key_text, what=f"AMANAH_MASTER_KEYS version {version}"
        )
    if not keys:
        raise KeyRingError("AMANAH_MASTER_KEYS holds no key.")
    return KeyRing(keys)


def key_ring() -> KeyRing:
    return _parse_ring(settings.AMANAH_MASTER_KEYS)


@lru_cache(maxsize=8)
def _parse_blind_key(raw: str) -> bytes:
    return _decode_key(raw, what="AMANAH_BLIND_INDEX_KEY")


def blind_index_key() -> bytes:
    return _parse_blind_key(settings.AMANAH_BLIND_INDEX_KEY)
