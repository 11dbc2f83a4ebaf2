"""Master keys in an HSM, through PKCS#11 (python-pkcs11): the `pkcs11` key provider.

Each master key version is one AES-256 secret-key object on the token, labelled
`<label>-v<N>`, made on the token (never imported), sensitive and not extractable: its
value cannot be read out, only used. A data key is sealed with CKM_AES_GCM inside the
HSM, under a nonce of ours and the data key's id as associated data, and stored in the
same format as `env` stores it; opening it is the same call the other way.

One PKCS#11 session per library, token and process, opened on first use, logged in with
the token's user PIN, and opened again after a fork (Celery's prefork children,
gunicorn's workers) or when the token drops it. A session runs one operation at a time,
so threads of one process take turns (a lock around each call).
"""

import logging
import os
import re
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.exceptions import PKCS11Error
from pkcs11.mechanisms import GCMParams

from apps.crypto.aead import FORMAT_V1, INTEGRITY_MESSAGE, NONCE_BYTES
from apps.crypto.errors import IntegrityFailure, KeyRingError
from apps.crypto.keyring import KeyRing

logger = logging.getLogger(__name__)

_V1 = bytes([FORMAT_V1])
_BODY = 1 + NONCE_BYTES
# Errors after which the session is opened again once (the token was reset, replugged).
_SESSION_LOST = (
    pkcs11.exceptions.SessionHandleInvalid,
    pkcs11.exceptions.SessionClosed,
    pkcs11.exceptions.DeviceRemoved,
    pkcs11.exceptions.TokenNotPresent,
    pkcs11.exceptions.UserNotLoggedIn,
)
_libraries: dict[str, tuple[int, Any]] = {}
_sessions: dict[tuple[str, str], "_Session"] = {}
_registry_lock = threading.Lock()


def _library(path: str) -> Any:
    """The loaded library, initialised in this process (again after a fork)."""
    pid = os.getpid()
    loaded = _libraries.get(path)
    if loaded is not None and loaded[0] == pid:
        return loaded[1]
    try:
        if loaded is None:
            lib = pkcs11.lib(path)
        else:  # A forked child: the parent's initialisation is not ours to use.
            lib = loaded[1]
            lib.reinitialize()
    except (PKCS11Error, OSError, RuntimeError) as exc:
        raise KeyRingError(
            f"The PKCS#11 library {path} could not be loaded ({type(exc).__name__})."
        ) from exc
    _libraries[path] = (pid, lib)
    return lib


class _Session:
    """A logged-in session of this process on one token."""

    def __init__(self, library: str, token: str, pin: str) -> None:
        self.library, self.token, self._pin = library, token, pin
        self.lock = threading.RLock()
        self._pid = 0
        self._session: Any = None
        # How many PKCS#11 sessions this has opened: key handles found in one are
        # not valid in the next (opened again, or in a forked child).
        self.opened = 0

    def get(self) -> Any:
        if self._session is not None and self._pid == os.getpid():
            return self._session
        lib = _library(self.library)
        try:
            token = lib.get_token(token_label=self.token)
        except pkcs11.exceptions.NoSuchToken:
            # A token made since the library was initialised: look again once. That
            # ends every session of this process; each is opened again on next use.
            lib.reinitialize()
            for other in list(_sessions.values()):
                other.drop()
            try:
                token = lib.get_token(token_label=self.token)
            except pkcs11.exceptions.NoSuchToken:
                raise KeyRingError(
                    f"No PKCS#11 token labelled {self.token!r} in {self.library}."
                ) from None
        try:
            try:
                self._session = token.open(user_pin=self._pin, rw=True)
            except pkcs11.exceptions.UserAlreadyLoggedIn:
                # PKCS#11 logs in the application, not the session: another session
                # of this process did, and this one shares it.
                self._session = token.open(rw=True)
        except pkcs11.exceptions.PinIncorrect:
            raise KeyRingError(
                f"The PIN for PKCS#11 token {self.token!r} was refused."
            ) from None
        except PKCS11Error as exc:
            raise KeyRingError(
                f"PKCS#11 token {self.token!r} could not be opened "
                f"({type(exc).__name__})."
            ) from exc
        self._pid = os.getpid()
        self.opened += 1
        return self._session

    def drop(self) -> None:
        self._session = None


def token_session(library: str, token: str, pin: str) -> _Session:
    """This process's logged-in session on `token` (one per library and token)."""
    with _registry_lock:
        session = _sessions.get((library, token))
        if session is None:
            session = _sessions[(library, token)] = _Session(library, token, pin)
        return session


class HandleHolder(Protocol):
    """Something that keeps key handles found in a token's session."""

    # The session (its `opened` count) the handles were found in.
    handles_opened: int

    def handles_forget(self) -> None: ...


T = TypeVar("T")


def with_session(token: _Session, holder: HandleHolder, work: Callable[[Any], T]) -> T:
    """Run `work(session)` under the session lock; once more on a fresh session if the
    token dropped this one. `holder` forgets its key handles first whenever the
    session is not the one they were found in (opened again, or a forked child's)."""
    with token.lock:
        for attempt in (1, 2):
            session = token.get()
            if holder.handles_opened != token.opened:
                holder.handles_forget()
                holder.handles_opened = token.opened
            try:
                return work(session)
            except _SESSION_LOST:
                if attempt == 2:
                    raise
                logger.warning("crypto.pkcs11_session_reopened")
                token.drop()
    raise AssertionError("unreachable")


class Pkcs11KeyRing(KeyRing):
    provider = "pkcs11"
    keeps_keys = True

    def __init__(
        self,
        *,
        library: str,
        token: str,
        pin: str,
        label: str,
        legacy: KeyRing | None = None,
    ) -> None:
        self._session = token_session(library, token, pin)
        self._label = label
        self._pattern = re.compile(re.escape(label) + r"-v([1-9][0-9]{0,8})")
        self._legacy = legacy
        self._keys: dict[int, Any] = {}
        self.handles_opened = 0
        self._loaded = False
        self.where = f"PKCS#11 token {token!r}"
        if legacy is not None:
            self.where += " and AMANAH_MASTER_KEYS"

    def __repr__(self) -> str:
        return f"<Pkcs11KeyRing {self.where} label={self._label!r}>"

    # Reading the token ------------------------------------------------------------

    def handles_forget(self) -> None:
        self._keys, self._loaded = {}, False

    def _call(self, work: Callable[[Any], T]) -> T:
        return with_session(self._session, self, work)

    def _load(self, session: Any) -> None:
        keys: dict[int, Any] = {}
        for key in session.get_objects(
            {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES}
        ):
            match = self._pattern.fullmatch(key.label or "")
            if match is None:
                continue
            version = int(match.group(1))
            if version in keys:
                raise KeyRingError(
                    f"{self.where} holds two keys labelled {key.label!r}."
                )
            if key[Attribute.EXTRACTABLE] or not key[Attribute.SENSITIVE]:
                raise KeyRingError(
                    f"Master key {key.label!r} can be read out of the HSM "
                    "(extractable or not sensitive); Amanah uses only keys that "
                    "cannot: make a new version with create_master_key."
                )
            keys[version] = key
        self._keys, self._loaded = keys, True

    def _key(self, session: Any, version: int) -> Any:
        if not self._loaded:
            self._load(session)
        key = self._keys.get(version)
        if key is None:
            self._load(session)  # made by another process since
            key = self._keys.get(version)
            if key is None:
                raise self.missing(version)
        return key

    def versions(self) -> frozenset[int]:
        def read(session: Any) -> frozenset[int]:
            if not self._loaded:
                self._load(session)
            return frozenset(self._keys)

        legacy = self._legacy.versions() if self._legacy else frozenset()
        return self._call(read) | legacy

    def reload(self) -> None:
        self._call(self._load)

    # Using the keys ---------------------------------------------------------------

    def _legacy_for(self, version: int) -> KeyRing | None:
        """The `env` ring of older versions, if it holds `version`."""
        if self._legacy is not None and version in self._legacy.versions():
            return self._legacy
        return None

    def wrap(self, version: int, plaintext: bytes, aad: bytes) -> bytes:
        if legacy := self._legacy_for(version):
            return legacy.wrap(version, plaintext, aad)
        nonce = os.urandom(NONCE_BYTES)

        def encrypt(session: Any) -> bytes:
            return self._key(session, version).encrypt(
                plaintext,
                mechanism=Mechanism.AES_GCM,
                mechanism_param=GCMParams(nonce, aad, 128),
            )

        return _V1 + nonce + self._call(encrypt)

    def unwrap(self, version: int, blob: bytes, aad: bytes) -> bytes:
        if legacy := self._legacy_for(version):
            return legacy.unwrap(version, blob, aad)
        if len(blob) <= _BODY or blob[0] != FORMAT_V1:
            raise IntegrityFailure(INTEGRITY_MESSAGE)

        def decrypt(session: Any) -> bytes:
            return self._key(session, version).decrypt(
                blob[_BODY:],
                mechanism=Mechanism.AES_GCM,
                mechanism_param=GCMParams(blob[1:_BODY], aad, 128),
            )

        try:
            return self._call(decrypt)
        except (
            pkcs11.exceptions.EncryptedDataInvalid,
            pkcs11.exceptions.EncryptedDataLenRange,
            pkcs11.exceptions.FunctionFailed,
            # SoftHSM2 answers a GCM tag that does not verify with CKR_GENERAL_ERROR.
            pkcs11.exceptions.GeneralError,
        ):
            raise IntegrityFailure(INTEGRITY_MESSAGE) from None

    # Making and destroying keys ---------------------------------------------------

    def create(self, version: int) -> None:
        label = f"{self._label}-v{version}"

        def generate(session: Any) -> None:
            self._load(session)
            if version in self._keys:
                raise KeyRingError(f"Master key version {version} exists already.")
            session.generate_key(
                KeyType.AES,
                256,
                label=label,
                store=True,
                template={
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.ENCRYPT: True,
                    Attribute.DECRYPT: True,
                    Attribute.WRAP: False,
                    Attribute.UNWRAP: False,
                    Attribute.SIGN: False,
                    Attribute.VERIFY: False,
                    Attribute.DERIVE: False,
                },
            )
            self._load(session)

        if self._legacy_for(version):
            raise KeyRingError(f"Master key version {version} exists already.")
        self._call(generate)
        return None

    def destroys(self, version: int) -> bool:
        return self._legacy_for(version) is None

    def destroy(self, version: int) -> bool:
        if self._legacy_for(version):
            return False  # in AMANAH_MASTER_KEYS: the operator removes it

        def remove(session: Any) -> None:
            self._key(session, version).destroy()
            self._load(session)

        self._call(remove)
        return True
