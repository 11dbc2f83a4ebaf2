from django.core.checks import Error, register

from apps.crypto.errors import KeyRingError
from apps.crypto.keyring import EnvKeyRing, blind_index_key, key_ring
from apps.crypto.signing import retired_public_keys, signer


@register()
def check_keys(app_configs, **kwargs):
    """A malformed key setting, or an HSM that cannot be reached, is a start-up error,
    not a failure on first use."""
    errors = []
    ring = None
    try:
        ring = key_ring()
        ring.versions()
    except KeyRingError as exc:
        errors.append(Error(str(exc), id="crypto.E001"))
    try:
        blind = blind_index_key()
    except KeyRingError as exc:
        errors.append(Error(str(exc), id="crypto.E002"))
    else:
        if isinstance(ring, EnvKeyRing) and blind in ring.keys.values():
            errors.append(
                Error(
                    "AMANAH_BLIND_INDEX_KEY must differ from every master key.",
                    id="crypto.E003",
                )
            )
    try:
        signer()  # parses AMANAH_SIGNING_KEY; an HSM's key is made when it first signs
        retired_public_keys()
    except KeyRingError as exc:
        errors.append(Error(str(exc), id="crypto.E004"))
    return errors
