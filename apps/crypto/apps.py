from django.apps import AppConfig


class CryptoConfig(AppConfig):
    name = "apps.crypto"
    label = "crypto"
    verbose_name = "Encryption keys"

    def ready(self) -> None:
        from apps.crypto import checks  # noqa: F401 - registers the key-ring check
