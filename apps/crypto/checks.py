from django.core.checks import Error, register

from apps.crypto.errors import KeyRingError
from apps.crypto.keyring import blind_index_key, key_ring


@register()
def check_keys(app_configs, **kwargs):
    """A malformed key setting is a start-up error, not a failure on first use."""
    errors = []
    for loader, ident in ((key_ring, "crypto.E001"), (blind_index_key, "crypto.E002")):
        try:
            loader()
        except KeyRingError as exc:
            errors.append(Error(str(exc), id=ident))
    if not errors and blind_index_key() in key_ring().keys.values():
        errors.append(
            Error(
                "AMANAH_BLIND_INDEX_KEY must differ from every master key.",
                id="crypto.E003",
            )
        )
    return errors
