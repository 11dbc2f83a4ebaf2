"""The signing key: Ed25519 signatures on what Amanah hands out (consent receipts) and
writes outside the database (audit checkpoints), verifiable by anyone with the public
key (published at /.well-known/amanah-signing-keys.json, a JWKS).

The key goes through the key provider (`AMANAH_KEY_PROVIDER`, apps/crypto/keyring.py):

- `env`: `AMANAH_SIGNING_KEY`, the base64 of the key's 32-byte private seed, held in
  this process's memory;
- `pkcs11`: an Ed25519 key pair on the HSM token, labelled
  `<AMANAH_PKCS11_KEY_LABEL>-signing`, made on the token the first time it signs
  (never imported; publishing the keys never makes it), its private half sensitive
  and not extractable; documents are
  signed inside the HSM (CKM_EDDSA). `AMANAH_SIGNING_KEY`, if also set, is still
  published (receipts signed under `env` before the move keep verifying) but signs
  nothing.

`AMANAH_SIGNING_PUBLIC_KEYS_RETIRED` (optional, comma-separated base64 raw 32-byte
Ed25519 public keys) are keys that signed before: published and accepted, never used to
sign, so a replaced key leaves older receipts and checkpoints verifiable.

A signed document is a JSON object with a `type` and a `signature` member:
`{"type": ..., ..., "signature": {"alg": "EdDSA", "kid": ..., "value": ...}}`. The
signature is over the document without its `signature` member, as canonical JSON
(keys sorted, no spaces, UTF-8); `value` is the signature in base64url without
padding, and `kid` the key's RFC 7638 thumbprint. Verifying needs only public keys.
"""

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from django.conf import settings
from django.db import transaction

from apps.audit import services as audit
from apps.core.db import advisory_xact_lock
from apps.crypto.errors import KeyRingError, SignatureInvalid

logger = logging.getLogger(__name__)

ALG = "EdDSA"
SEED_BYTES = 32
SIGNATURE_BYTES = 64
# Ed25519 (RFC 8410): the curve's object identifier, as PKCS#11 names it.
ED25519_OID = "1.3.101.112"
SIGNING_KEY_LOCK = "crypto.signing_key"
# A key id this installation makes: an RFC 7638 thumbprint, base64url (43 characters).
KID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Before the first signature the token holds no key: how long a process remembers
# that (each read of the public JWKS would otherwise look on the token), unless its
# own sign() makes the key first.
KEY_ABSENT_SECONDS = 60


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding. Raises ValueError."""
    if not isinstance(text, str) or "=" in text:
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc
    if b64url(data) != text:  # one text per byte string: no altered padding bits
        raise ValueError("not base64url")
    return data


def canonical_json(content: dict[str, Any]) -> bytes:
    """The bytes a signature covers: keys sorted, compact separators, UTF-8."""
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")


@dataclass(frozen=True)
class PublicKey:
    """An Ed25519 public key (32 bytes) and its key id."""

    raw: bytes

    @property
    def x(self) -> str:
        return b64url(self.raw)

    @property
    def kid(self) -> str:
        """The RFC 7638 thumbprint: SHA-256 of the key's required JWK members."""
        members = json.dumps(
            {"crv": "Ed25519", "kty": "OKP", "x": self.x},
            sort_keys=True,
            separators=(",", ":"),
        )
        return b64url(hashlib.sha256(members.encode()).digest())

    def jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": self.x,
            "kid": self.kid,
            "use": "sig",
            "alg": ALG,
        }

    def verify(self, signature: bytes, data: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, data)
        except InvalidSignature:
            return False
        return True


class Signer(ABC):
    """The key that signs, and the public keys that verify."""

    where: str  # where the key lives, for messages (never a secret)

    @property
    @abstractmethod
    def public_key(self) -> PublicKey:
        """The public half of the key that signs now."""

    @abstractmethod
    def sign(self, data: bytes) -> bytes:
        """An Ed25519 signature of `data` (64 bytes)."""

    def public_keys(self) -> list[PublicKey]:
        """Every key a document of this installation may be signed by, the one that
        signs now first."""
        return [self.public_key]

    def look_again(self) -> None:  # noqa: B027 - most signers remember nothing
        """Forget that the signing key was not found (a signer that remembers it)."""


class EnvSigner(Signer):
    where = "AMANAH_SIGNING_KEY"

    def __init__(self, seed: bytes) -> None:
        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self._public = PublicKey(self._key.public_key().public_bytes_raw())

    def __repr__(self) -> str:
        return f"<EnvSigner kid={self._public.kid}>"  # never the seed

    @property
    def public_key(self) -> PublicKey:
        return self._public

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)


def _parse_seed(raw: str) -> bytes:
    try:
        seed = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyRingError("AMANAH_SIGNING_KEY is not valid base64.") from exc
    if len(seed) != SEED_BYTES:
        raise KeyRingError(
            f"AMANAH_SIGNING_KEY must be 32 bytes (an Ed25519 seed), not {len(seed)}."
        )
    return seed


def signing_key_generate() -> str:
    """A new AMANAH_SIGNING_KEY value (base64 of a random Ed25519 seed)."""
    return base64.b64encode(os.urandom(SEED_BYTES)).decode()


@lru_cache(maxsize=8)
def _env_signer(raw: str) -> EnvSigner:
    return EnvSigner(_parse_seed(raw))


class Pkcs11Signer(Signer):
    """An Ed25519 key pair on the token, labelled `<label>-signing`, made there on
    the first signature (one process makes it: an advisory lock in the database).
    Reading the public keys never makes it: until then the token publishes none (a
    process that found none looks again KEY_ABSENT_SECONDS later, or at its own first
    signature)."""

    def __init__(
        self, *, library: str, token: str, pin: str, label: str, legacy: str
    ) -> None:
        from apps.crypto.hsm import token_session

        self._session = token_session(library, token, pin)
        self.label = f"{label}-signing"
        self._legacy = _env_signer(legacy) if legacy else None
        self._lock = threading.Lock()
        self.handles_opened = 0
        self._public: PublicKey | None = None
        self._private: Any = None
        # Until when (time.monotonic) reads take the key as not on the token yet.
        self._absent_until = 0.0
        self.where = f"PKCS#11 token {token!r}, key {self.label!r}"

    def __repr__(self) -> str:
        return f"<Pkcs11Signer {self.where}>"

    def handles_forget(self) -> None:
        self._private = None  # the public key's bytes stay true

    def _call(self, work: Any) -> Any:
        from apps.crypto.hsm import with_session

        return with_session(self._session, self, work)

    def _find(self, session: Any) -> tuple[Any, Any] | None:
        from pkcs11 import Attribute, KeyType, ObjectClass

        found = {}
        for kind in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
            keys = list(
                session.get_objects(
                    {
                        Attribute.CLASS: kind,
                        Attribute.KEY_TYPE: KeyType.EC_EDWARDS,
                        Attribute.LABEL: self.label,
                    }
                )
            )
            if len(keys) > 1:
                raise KeyRingError(f"{self.where}: the token holds two such keys.")
            found[kind] = keys[0] if keys else None
        private, public = found[ObjectClass.PRIVATE_KEY], found[ObjectClass.PUBLIC_KEY]
        if private is None or public is None:
            return None
        if private[Attribute.EXTRACTABLE] or not private[Attribute.SENSITIVE]:
            raise KeyRingError(
                f"{self.where} can be read out of the HSM (extractable or not "
                "sensitive); Amanah signs only with a key that cannot."
            )
        return private, public

    @staticmethod
    def _point(public: Any) -> PublicKey:
        from pkcs11 import Attribute

        point = bytes(public[Attribute.EC_POINT])
        # CKA_EC_POINT is the DER OCTET STRING of the 32-byte key (04 20 ...); some
        # tokens give the bare 32 bytes.
        if len(point) == SEED_BYTES + 2 and point[:2] == b"\x04\x20":
            point = point[2:]
        if len(point) != SEED_BYTES:
            raise KeyRingError("The HSM's signing key is not an Ed25519 key.")
        return PublicKey(point)

    def _generate(self, session: Any) -> None:
        from pkcs11 import Attribute, KeyType
        from pkcs11.util.ec import encode_named_curve_parameters

        params = session.create_domain_parameters(
            KeyType.EC_EDWARDS,
            {Attribute.EC_PARAMS: encode_named_curve_parameters(ED25519_OID)},
            local=True,
        )
        params.generate_keypair(
            store=True,
            label=self.label,
            public_template={
                Attribute.TOKEN: True,
                Attribute.VERIFY: True,
            },
            private_template={
                Attribute.TOKEN: True,
                Attribute.PRIVATE: True,
                Attribute.SENSITIVE: True,
                Attribute.EXTRACTABLE: False,
                Attribute.SIGN: True,
                Attribute.DERIVE: False,
            },
        )

    def _load(self, *, create: bool) -> bool:
        """Whether the key pair is on the token; made first when `create`."""
        if self._public is not None:
            return True
        if not create and time.monotonic() < self._absent_until:
            return False
        with self._lock:
            pair = self._call(self._find)
            if pair is None and create:
                pair = self._create()
            if pair is None:
                self._absent_until = time.monotonic() + KEY_ABSENT_SECONDS
                return False
            self._public = self._point(pair[1])
            return True

    def _create(self) -> tuple[Any, Any]:
        """Make the key pair, once across processes: under the database's advisory
        lock, look again, then make it and audit it."""
        with transaction.atomic():
            advisory_xact_lock(SIGNING_KEY_LOCK)
            pair = self._call(self._find)
            if pair is not None:
                return pair

            def make(session: Any) -> tuple[Any, Any]:
                self._generate(session)
                made = self._find(session)
                if made is None:
                    raise KeyRingError(f"{self.where} could not be made.")
                return made

            pair = self._call(make)
            audit.record(
                actor=None,
                action="crypto.signing_key_created",
                details={"kid": self._point(pair[1]).kid, "provider": "pkcs11"},
            )
            return pair

    @property
    def public_key(self) -> PublicKey:
        if not self._load(create=False) or self._public is None:
            raise KeyRingError(f"{self.where} is not on the token yet.")
        return self._public

    def sign(self, data: bytes) -> bytes:
        from pkcs11 import Mechanism

        self._load(create=True)

        def sign(session: Any) -> bytes:
            if self._private is None:  # not found yet in this session
                pair = self._find(session)
                if pair is None:
                    raise KeyRingError(f"{self.where} is not on the token.")
                self._private = pair[0]
            return bytes(self._private.sign(data, mechanism=Mechanism.EDDSA))

        return self._call(sign)

    def look_again(self) -> None:
        # Another process may have made the key since this one found none.
        self._absent_until = 0.0

    def public_keys(self) -> list[PublicKey]:
        keys = [self._public] if self._load(create=False) and self._public else []
        if self._legacy is not None and self._legacy.public_key not in keys:
            keys.append(self._legacy.public_key)
        return keys


@lru_cache(maxsize=32)
def _pkcs11_signer(
    library: str, token: str, pin: str, label: str, legacy: str
) -> Pkcs11Signer:
    return Pkcs11Signer(
        library=library, token=token, pin=pin, label=label, legacy=legacy
    )


def signer() -> Signer:
    """This installation's signer, by AMANAH_KEY_PROVIDER. Raises KeyRingError."""
    provider = getattr(settings, "AMANAH_KEY_PROVIDER", "env")
    raw = getattr(settings, "AMANAH_SIGNING_KEY", "") or ""
    if provider == "pkcs11":
        for name in (
            "AMANAH_PKCS11_LIBRARY",
            "AMANAH_PKCS11_TOKEN",
            "AMANAH_PKCS11_PIN",
        ):
            if not getattr(settings, name, ""):
                raise KeyRingError(f"AMANAH_KEY_PROVIDER=pkcs11 needs {name}.")
        if raw:
            _parse_seed(raw)
        return _pkcs11_signer(
            settings.AMANAH_PKCS11_LIBRARY,
            settings.AMANAH_PKCS11_TOKEN,
            settings.AMANAH_PKCS11_PIN,
            settings.AMANAH_PKCS11_KEY_LABEL,
            raw,
        )
    if not raw:
        raise KeyRingError("AMANAH_SIGNING_KEY is not set.")
    return _env_signer(raw)


@lru_cache(maxsize=8)
def _parse_retired(raw: str) -> tuple[PublicKey, ...]:
    keys = []
    for number, item in enumerate(raw.split(","), start=1):
        if not item.strip():
            continue
        try:
            key = base64.b64decode(item.strip(), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != SEED_BYTES:
            raise KeyRingError(
                f"AMANAH_SIGNING_PUBLIC_KEYS_RETIRED: key {number} is not the base64 "
                "of a 32-byte Ed25519 public key."
            )
        keys.append(PublicKey(key))
    return tuple(keys)


def retired_public_keys() -> tuple[PublicKey, ...]:
    """The keys of AMANAH_SIGNING_PUBLIC_KEYS_RETIRED. Raises KeyRingError."""
    return _parse_retired(getattr(settings, "AMANAH_SIGNING_PUBLIC_KEYS_RETIRED", ""))


def public_key_b64(key: PublicKey) -> str:
    """The form AMANAH_SIGNING_PUBLIC_KEYS_RETIRED takes a key in."""
    return base64.b64encode(key.raw).decode()


def public_keys() -> list[PublicKey]:
    """The public keys that verify this installation's documents: the signer's, then
    the retired ones."""
    keys = signer().public_keys()
    return keys + [key for key in retired_public_keys() if key not in keys]


def jwks() -> dict[str, list[dict[str, str]]]:
    """The public keys as a JSON Web Key Set (RFC 7517, OKP keys of RFC 8037)."""
    return {"keys": [key.jwk() for key in public_keys()]}


def public_keys_from_jwks(document: Any) -> list[PublicKey]:
    """The Ed25519 keys of a JWKS (e.g. a copy of the well-known one). Raises
    SignatureInvalid when it is not one."""
    try:
        entries = document["keys"]
        keys = [
            PublicKey(b64url_decode(entry["x"]))
            for entry in entries
            if entry.get("kty") == "OKP" and entry.get("crv") == "Ed25519"
        ]
    except (TypeError, KeyError, AttributeError, ValueError):
        raise SignatureInvalid("The key file is not a JWKS.", field="keys") from None
    if any(len(key.raw) != SEED_BYTES for key in keys) or not keys:
        raise SignatureInvalid(
            "The key file holds no Ed25519 public key.", field="keys"
        )
    return keys


def document_sign(content: dict[str, Any]) -> dict[str, Any]:
    """`content` (a JSON object with a `type`) with a `signature` member."""
    if "signature" in content or not content.get("type"):
        raise ValueError("a document to sign has a type and no signature yet")
    key = signer()
    value = key.sign(canonical_json(content))
    return {
        **content,
        "signature": {"alg": ALG, "kid": key.public_key.kid, "value": b64url(value)},
    }


@dataclass(frozen=True)
class Verified:
    content: dict[str, Any]  # the document without its signature
    kid: str


def document_verify(
    document: Any,
    *,
    type: str,
    what: str,
    keys: Iterable[PublicKey] | None = None,
) -> Verified:
    """Check a signed document of `type` (`what` names it in messages) against
    `keys` (a key file's; this installation's public keys by default). Raises
    SignatureInvalid with one readable sentence."""
    if not isinstance(document, dict) or document.get("type") != type:
        raise SignatureInvalid(f"This is not {what}.", code="not_a_document")
    signature = document.get("signature")
    if signature is None:
        raise SignatureInvalid(f"This {_noun(what)} is not signed.", code="unsigned")
    if (
        not isinstance(signature, dict)
        or signature.get("alg") != ALG
        or not isinstance(signature.get("kid"), str)
        or not KID_RE.fullmatch(signature["kid"])
    ):
        raise SignatureInvalid(
            f"This {_noun(what)}'s signature is malformed (it needs alg EdDSA, a kid "
            "and a value).",
            code="malformed",
            reason="malformed_header",
        )
    try:
        value = b64url_decode(str(signature.get("value") or ""))
    except ValueError:
        value = b""
    if len(value) != SIGNATURE_BYTES:
        raise SignatureInvalid(
            f"This {_noun(what)}'s signature is malformed (its value is not a "
            "base64url Ed25519 signature).",
            code="malformed",
            reason="malformed_value",
        )
    known = {key.kid: key for key in (public_keys() if keys is None else keys)}
    key = known.get(signature["kid"])
    if key is None and keys is None:
        # A key this process remembered as absent may have been made by another.
        signer().look_again()
        key = {key.kid: key for key in public_keys()}.get(signature["kid"])
    if key is None:
        raise SignatureInvalid(
            f"This {_noun(what)} is signed by an unknown key "
            f"(kid {signature['kid']}), "
            + (
                "not one this installation publishes."
                if keys is None
                else "not in the key file."
            ),
            code="unknown_key",
            reason="unknown_key" if keys is None else "unknown_key_file",
            kid=signature["kid"],
        )
    content = {name: value for name, value in document.items() if name != "signature"}
    try:
        signed = canonical_json(content)
    except (UnicodeError, ValueError, RecursionError):
        # A lone surrogate ("\ud800") has no UTF-8; nothing this installation signs
        # holds one.
        raise SignatureInvalid(
            f"This {_noun(what)} cannot be read: it holds text that is not valid "
            "Unicode, so it was not signed as it is.",
            code="malformed",
            reason="malformed_text",
        ) from None
    if not key.verify(value, signed):
        raise SignatureInvalid(
            f"This {_noun(what)}'s signature does not match its content: it was "
            "altered after it was signed.",
            code="bad_signature",
        )
    return Verified(content=content, kid=key.kid)


def _noun(what: str) -> str:
    """'a consent receipt' -> 'consent receipt'."""
    for article in ("a ", "an "):
        if what.startswith(article):
            return what[len(article) :]
    return what
