"""Secrets accounts keeps sealed under a data key of their own (an OIDC link's
refresh token).

The accounts app sits below crypto (docs/ARCHITECTURE.md), so it cannot import the
data keys; the crypto app registers how to make one, seal under it and open with it
when it starts (`CryptoConfig.ready`), as it does for audit's checkpoint signatures.
"""

from collections.abc import Callable
from typing import Any

from apps.accounts.errors import AccountError

# create() -> a new, saved data key
Create = Callable[[], Any]
# seal(data_key, plaintext, aad) -> ciphertext; open(data_key, blob, aad) -> plaintext
# or None once the key was destroyed
Seal = Callable[[Any, bytes, bytes], bytes]
Open = Callable[[Any, bytes, bytes], bytes | None]

_registered: dict[str, Any] = {}


def sealer_register(*, create: Create, seal: Seal, open_: Open) -> None:
    _registered.update(create=create, seal=seal, open=open_)


def _get(name: str) -> Any:
    try:
        return _registered[name]
    except KeyError:
        raise AccountError(
            "No data keys are available to the accounts app (the crypto app is not "
            "installed)."
        ) from None


def data_key_create() -> Any:
    """A new data key (a saved crypto.DataKey). Raises AccountError."""
    return _get("create")()


def secret_seal(*, data_key: Any, plaintext: str, aad: bytes) -> bytes:
    """`plaintext` sealed under `data_key`, bound to `aad`. Raises AccountError."""
    return bytes(_get("seal")(data_key, plaintext.encode(), aad))


def secret_open(*, data_key: Any, blob: bytes | memoryview, aad: bytes) -> str | None:
    """What `secret_seal` sealed; None once the data key was destroyed. Raises
    AccountError, or the cipher's error when `blob` was tampered with."""
    plain = _get("open")(data_key, bytes(blob), aad)
    return None if plain is None else plain.decode()
