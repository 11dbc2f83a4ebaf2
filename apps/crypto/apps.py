from django.apps import AppConfig


class CryptoConfig(AppConfig):
    name = "apps.crypto"
    label = "crypto"
    verbose_name = "Encryption keys"

    def ready(self) -> None:
        from apps.accounts.sealing import sealer_register
        from apps.audit.signatures import checkpoint_signer_register
        from apps.crypto import checks  # noqa: F401 - registers the key-ring check
        from apps.crypto.keys import open_with, seal_with
        from apps.crypto.services import data_key_create
        from apps.crypto.signing import (
            document_sign,
            document_verify,
            public_keys_from_jwks,
        )

        # Audit sits below crypto: it signs its checkpoints through this hook.
        checkpoint_signer_register(
            sign=document_sign, verify=document_verify, jwks_keys=public_keys_from_jwks
        )
        # Accounts too: an OIDC link's refresh token is sealed under its own data key.
        sealer_register(create=data_key_create, seal=seal_with, open_=open_with)
