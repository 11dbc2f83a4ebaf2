"""The key ring: master keys (KEKs) from a key provider, and the blind-index key.

`AMANAH_KEY_PROVIDER` picks where master keys live:

- `env` (the development default): `AMANAH_MASTER_KEYS`, `version:base64key` pairs
  separated by commas, e.g. `2:<base64>,1:<base64>`, each 256 bits, held in this
  process's memory;
- `pkcs11`: non-extractable AES-256 key objects in an HSM token reached through
  PKCS#11 (apps/crypto/hsm.py), one per version, labelled
  `<AMANAH_PKCS11_KEY_LABEL>-v<N>`. Data keys are sealed and opened inside the HSM;
  no master key byte enters the process. `AMANAH_MASTER_KEYS`, if also set, holds
  older versions, still readable while they are rotated away (the way from `env` to
  `pkcs11`).

Either way a data key is wrapped in the format of every sealed value
(apps/crypto/aead.py): AES-256-GCM, `0x01 | nonce | ciphertext and tag`, bound to
`amanah:dek:<id>`; so a version can move between providers only by rotation, never by
copying rows.

Which version new data keys go under is the database's to say
(apps/crypto/masterkeys.py), not the ring's: every process follows it, and one whose
ring lacks it refuses to wrap. Settings are read at call time; the ring is built once
per distinct setting value.
"""

import base64
import binascii
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from apps.crypto.aead import seal, unseal
from apps.crypto.errors import KeyRingError

KEY_BYTES = 32
PROVIDERS = ("env", "pkcs11")


def _decode_key(text: str, *, what: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyRingError(f"{what} is not valid base64.") from exc
    if len(key) != KEY_BYTES:
        raise KeyRingError(f"{what} must be 32 bytes (256 bits), not {len(key)}.")
    return key


class KeyRing(ABC):
    """Master key versions and the two things done with them: seal a data key under a
    version, open one sealed under a version."""

    provider: str
    where: str  # where the keys live, for messages (never a secret)
    keeps_keys: bool  # makes and destroys versions itself (an HSM), or an operator does

    @abstractmethod
    def versions(self) -> frozenset[int]:
        """The versions this process can use now."""

    @abstractmethod
    def wrap(self, version: int, plaintext: bytes, aad: bytes) -> bytes:
        """Seal under `version`. Raises KeyRingError (unknown version)."""

    @abstractmethod
    def unwrap(self, version: int, blob: bytes, aad: bytes) -> bytes:
        """Open a blob sealed under `version`. Raises KeyRingError (unknown version)
        or IntegrityFailure (altered, or bound to another data key)."""

    def reload(self) -> None:
        """Look for versions made since the ring was read (another process may have
        made one). Keys in memory cannot change under a running process: no-op."""
        return None

    @abstractmethod
    def create(self, version: int) -> str | None:
        """Make `version`. Returns the text an operator must add to the
        configuration, or None when the provider made and keeps the key itself."""

    @abstractmethod
    def destroy(self, version: int) -> bool:
        """Destroy `version` where the provider can (True); False when an operator
        must remove it from the configuration."""

    def destroys(self, version: int) -> bool:
        """Whether retiring `version` destroys it here (else an operator removes it)."""
        return False

    @property
    def active_version(self) -> int:
        """The ring's newest version (the database names the one in use)."""
        versions = self.versions()
        if not versions:
            raise KeyRingError(f"The key ring ({self.where}) holds no master key.")
        return max(versions)

    def missing(self, version: int) -> KeyRingError:
        return KeyRingError(
            f"Master key version {version} is not in the key ring ({self.where})."
        )


@dataclass(frozen=True, eq=False)
class EnvKeyRing(KeyRing):
    keys: dict[int, bytes] = field(repr=False)  # never printed
    _ciphers: dict[int, AESGCM] = field(default_factory=dict, repr=False)

    provider = "env"
    where = "AMANAH_MASTER_KEYS"
    keeps_keys = False

    def versions(self) -> frozenset[int]:
        return frozenset(self.keys)

    def aead(self, version: int) -> AESGCM:
        """The cipher for a master key version, built once. Raises KeyRingError."""
        cipher = self._ciphers.get(version)
        if cipher is None:
            try:
                key = self.keys[version]
            except KeyError:
                raise self.missing(version) from None
            cipher = self._ciphers[version] = AESGCM(key)
        return cipher

    def wrap(self, version: int, plaintext: bytes, aad: bytes) -> bytes:
        return seal(self.aead(version), plaintext, aad)

    def unwrap(self, version: int, blob: bytes, aad: bytes) -> bytes:
        return unseal(self.aead(version), blob, aad)

    def create(self, version: int) -> str:
        if version in self.keys:
            raise KeyRingError(f"Master key version {version} exists already.")
        key = base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()
        return f"{version}:{key}"

    def destroy(self, version: int) -> bool:
        return False


def _parse_env_ring(raw: str) -> EnvKeyRing:
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
    return EnvKeyRing(keys)


@lru_cache(maxsize=8)
def _env_ring(raw: str) -> EnvKeyRing:
    ring = _parse_env_ring(raw)
    if not ring.keys:
        raise KeyRingError("AMANAH_MASTER_KEYS holds no key.")
    return ring


@lru_cache(maxsize=32)
def _pkcs11_ring(
    library: str, token: str, pin: str, label: str, legacy: str
) -> KeyRing:
    from apps.crypto.hsm import Pkcs11KeyRing

    return Pkcs11KeyRing(
        library=library,
        token=token,
        pin=pin,
        label=label,
        legacy=_parse_env_ring(legacy) if legacy else None,
    )


def key_ring() -> KeyRing:
    provider = getattr(settings, "AMANAH_KEY_PROVIDER", "env")
    if provider == "env":
        return _env_ring(settings.AMANAH_MASTER_KEYS)
    if provider == "pkcs11":
        for name in (
            "AMANAH_PKCS11_LIBRARY",
            "AMANAH_PKCS11_TOKEN",
            "AMANAH_PKCS11_PIN",
        ):
            if not getattr(settings, name, ""):
                raise KeyRingError(f"AMANAH_KEY_PROVIDER=pkcs11 needs {name}.")
        return _pkcs11_ring(
            settings.AMANAH_PKCS11_LIBRARY,
            settings.AMANAH_PKCS11_TOKEN,
            settings.AMANAH_PKCS11_PIN,
            settings.AMANAH_PKCS11_KEY_LABEL,
            settings.AMANAH_MASTER_KEYS or "",
        )
    raise KeyRingError(
        f"AMANAH_KEY_PROVIDER must be one of {', '.join(PROVIDERS)}, not {provider!r}."
    )


@lru_cache(maxsize=8)
def _parse_blind_key(raw: str) -> bytes:
    return _decode_key(raw, what="AMANAH_BLIND_INDEX_KEY")


def blind_index_key() -> bytes:
    return _parse_blind_key(settings.AMANAH_BLIND_INDEX_KEY)
