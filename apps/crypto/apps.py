from django.apps import AppConfig


class CryptoConfig(AppConfig):
    name = "apps.crypto"
    label = "crypto"
    verbose_name = "Encryption keys"

    def ready(self) -> None:
        from apps.audit.signatures import checkpoint_signer_register
        from apps.crypto import checks  # noqa: F401 - registers the key-ring check
        from apps.crypto.signing import (
            document_sign,
            document_verify,
            public_keys_from_jwks,
        )

        # Audit sits below crypto: it signs its checkpoints through this hook.
        checkpoint_signer_register(
            sign=document_sign, verify=document_verify, jwks_keys=public_keys_from_jwks
        )
