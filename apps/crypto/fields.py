"""Encrypted model fields and blind-index fields.

An encrypted field stores `aead.seal(...)` bytes under the row's data key (the model
names the foreign key to its DataKey with `key_field`). Values decrypt lazily on first
access and are cached on the instance; the data key is unwrapped once per scope (see
keys.key_scope).
Encrypted fields cannot be used in filters or `update()`: search through a blind index.
"""

from datetime import date
from typing import Any

from django.db import models

from apps.crypto.aead import seal, unseal
from apps.crypto.blind import blind_index
from apps.crypto.keys import aead_for


class Sealed(bytes):
    """Ciphertext read from the database, not decrypted yet. Never shows its bytes."""

    def __repr__(self) -> str:
        return "<sealed>"

    __str__ = __repr__


class _Erased:
    """What an encrypted field reads as once its data key has been destroyed."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "ERASED"

    def __str__(self) -> str:
        return "[erased]"


ERASED = _Erased()


class _EncryptedDescriptor:
    def __init__(self, field: "EncryptedTextField"):
        self.field = field

    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is None:
            return self
        name = self.field.attname
        value = instance.__dict__.get(name)
        if isinstance(value, Sealed):
            value = self.field.open(instance, value)
            instance.__dict__[name] = value
        elif value is None and self.field.key_destroyed(instance):
            return ERASED
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        if isinstance(value, memoryview | bytes) and not isinstance(value, Sealed):
            value = Sealed(value)
        if isinstance(value, Sealed):
            # Keep the ciphertext so an unchanged value is not re-encrypted on save.
            instance.__dict__.setdefault("_amanah_sealed", {}).pop(
                self.field.attname, None
            )
        instance.__dict__[self.field.attname] = value


class EncryptedTextField(models.BinaryField):
    """Text sealed with AES-256-GCM under the row's data key."""

    def __init__(self, *args: Any, key_field: str = "data_key", **kwargs: Any):
        self.key_field = key_field
        kwargs["null"] = True
        kwargs.setdefault("editable", False)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["key_field"] = self.key_field
        kwargs.pop("null", None)
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def contribute_to_class(self, cls, name, private_only=False):
        super().contribute_to_class(cls, name, private_only=private_only)
        setattr(cls, self.attname, _EncryptedDescriptor(self))

    # Conversions between the Python value and the bytes that get sealed.
    def encode(self, value: Any) -> bytes:
        return str(value).encode()

    def decode(self, raw: bytes) -> Any:
        return raw.decode()

    def _aad(self, instance: Any) -> bytes:
        if instance.pk is None:
            raise ValueError(
                "Encrypted fields need the row's primary key before saving."
            )
        return (
            f"amanah:v1:{instance._meta.db_table}.{self.column}:{instance.pk}".encode()
        )

    def _where(self, instance: Any) -> str:
        return f"{instance._meta.db_table}.{self.column}:{instance.pk}"

    def key_destroyed(self, instance: Any) -> bool:
        if getattr(instance, f"{self.key_field}_id", None) is None:
            return False
        return getattr(instance, self.key_field).is_destroyed

    def _aead(self, instance: Any):
        data_key = getattr(instance, self.key_field)
        cached = instance.__dict__.get("_amanah_aead")
        if (
            cached is not None
            and cached[0] == data_key.pk
            and not data_key.is_destroyed
        ):
            return cached[1]
        aead = aead_for(data_key)
        instance.__dict__["_amanah_aead"] = (data_key.pk, aead)
        return aead

    def open(self, instance: Any, blob: Sealed) -> Any:
        aead = self._aead(instance)
        if aead is None:
            return ERASED
        value = self.decode(
            unseal(aead, blob, self._aad(instance), where=self._where(instance))
        )
        instance.__dict__.setdefault("_amanah_sealed", {})[self.attname] = (value, blob)
        return value

    def pre_save(self, model_instance: Any, add: bool) -> bytes | None:
        value = model_instance.__dict__.get(self.attname)
        if value is None or value is ERASED:
            return None
        if isinstance(value, Sealed):
            return bytes(value)
        previous = model_instance.__dict__.get("_amanah_sealed", {}).get(self.attname)
        if previous is not None and previous[0] == value:
            return bytes(previous[1])
        aead = self._aead(model_instance)
        if aead is None:
            raise ValueError(
                "This record's data key was destroyed; it cannot hold data."
            )
        blob = seal(aead, self.encode(value), self._aad(model_instance))
        model_instance.__dict__.setdefault("_amanah_sealed", {})[self.attname] = (
            value,
            blob,
        )
        return blob

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False):
        if value is None:
            return None
        if not isinstance(value, bytes | memoryview):
            raise TypeError(
                f"{self.name} is encrypted: it cannot be filtered on or set with "
                "update(); search through its blind index and save through a service."
            )
        return connection.Database.Binary(bytes(value))

    def from_db_value(
        self, value: Any, expression: Any, connection: Any
    ) -> Sealed | None:
        return None if value is None else Sealed(value)

    def to_python(self, value: Any) -> Any:
        return value

    def value_to_string(self, obj: Any) -> str:
        # Serialisation (dumpdata) never decrypts.
        return "<sealed>"


class EncryptedDateField(EncryptedTextField):
    """A date sealed like text (ISO format inside the ciphertext)."""

    def encode(self, value: Any) -> bytes:
        if isinstance(value, str):
            value = date.fromisoformat(value)
        return value.isoformat().encode()

    def decode(self, raw: bytes) -> date:
        return date.fromisoformat(raw.decode())


class Digest(str):
    """A blind-index value that is already hashed (not to be hashed again)."""


class BlindIndexField(models.CharField):
    """HMAC of another field's normalised value, maintained on save.

    Filter with the plain value: `Customer.objects.filter(email_index="Jane@X.org")`;
    the field normalises and hashes it in Python.
    """

    def __init__(
        self, *args: Any, source: str = "", normalizer: Any = None, **kwargs: Any
    ):
        self.source = source
        self.normalizer = normalizer
        # A unique index serves lookups too; otherwise a plain one.
        kwargs.setdefault("db_index", not kwargs.get("unique", False))
        kwargs.update(max_length=64, null=True, blank=True, editable=False)
        super().__init__(*args, **kwargs)

    def db_type(self, connection: Any) -> str | None:
        # Fixed-width hex: no `varchar_pattern_ops` LIKE index, which hashes never need.
        return (
            "char(64)"
            if connection.vendor == "postgresql"
            else super().db_type(connection)
        )

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        for key in ("max_length", "null", "blank", "editable"):
            kwargs.pop(key, None)
        kwargs.update(source=self.source, normalizer=self.normalizer)
        return name, path, args, kwargs

    @property
    def scope(self) -> str:
        return f"{self.model._meta.label_lower}.{self.source}"

    def digest(self, plain: str) -> Digest:
        """Raises ValueError when the normaliser refuses the value."""
        return Digest(blind_index(self.scope, self.normalizer(plain)))

    def pre_save(self, model_instance: Any, add: bool) -> Digest | None:
        if isinstance(model_instance.__dict__.get(self.source), Sealed):
            # The source was not touched since it was loaded: its index stands.
            return model_instance.__dict__.get(self.attname)
        plain = getattr(model_instance, self.source)
        value = (
            None
            if plain is None or plain is ERASED or plain == ""
            else self.digest(plain)
        )
        setattr(model_instance, self.attname, value)
        return value

    def get_prep_value(self, value: Any) -> str | None:
        if value is None or isinstance(value, Digest):
            return value
        return self.digest(str(value))

    def from_db_value(
        self, value: Any, expression: Any, connection: Any
    ) -> Digest | None:
        return None if value is None else Digest(value)
