"""Encrypted model fields and blind-index fields.

An encrypted field stores `aead.seal(...)` bytes under the row's data key (the model
names the foreign key to its DataKey with `key_field`). A loaded row keeps the
ciphertext; values decrypt lazily on first access into a per-instance cache, and the
data key is unwrapped once per scope (see keys.key_scope). An unchanged value is saved
back as the same ciphertext. Encrypted fields hold text or dates (never bytes: bytes on
the instance are ciphertext), and cannot be filtered on or set with `update()`: search
through a blind index.
"""

import logging
from datetime import date
from typing import Any, Literal

from django.db import models

from apps.crypto.aead import seal, unseal
from apps.crypto.blind import blind_index
from apps.crypto.errors import IntegrityFailure
from apps.crypto.keys import aead_for_id

logger = logging.getLogger(__name__)

_PLAIN = "_amanah_plain"  # instance cache: field name -> decrypted value
_AEAD = "_amanah_aead"  # instance cache: (data key id, cipher)
_PK = "_amanah_pk"  # instance cache: (pk, pk as bytes) for associated data


class Sealed(bytes):
    """Ciphertext, marked as such where it travels outside a model instance."""

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

    def __bool__(self) -> Literal[False]:
        return False

    def __repr__(self) -> str:
        return "ERASED"

    def __str__(self) -> str:
        return "[erased]"


ERASED = _Erased()


class _EncryptedDescriptor:
    __slots__ = ("field", "name")

    def __init__(self, field: "EncryptedTextField"):
        self.field = field
        self.name = field.attname

    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is None:
            return self
        data = instance.__dict__
        name = self.name
        if name not in data:  # deferred with only()/defer()
            instance.refresh_from_db(fields=[name])
        value = data[name]
        if isinstance(value, bytes):
            plain = data.get(_PLAIN)
            if plain is None:
                plain = data[_PLAIN] = {}
            elif name in plain:
                return plain[name]
            result = plain[name] = self.field.open(instance, value)
            return result
        if value is None and self.field.key_destroyed(instance):
            return ERASED
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        if isinstance(value, memoryview):
            value = bytes(value)
        data = instance.__dict__
        data[self.name] = value
        plain = data.get(_PLAIN)
        if plain:
            plain.pop(self.name, None)


class EncryptedTextField(models.BinaryField):
    """Text sealed with AES-256-GCM under the row's data key."""

    # For django-stubs: what the attribute holds (`_EncryptedDescriptor`), not the
    # ciphertext BinaryField stands for; always nullable.
    _pyi_private_set_type: str | None
    _pyi_private_get_type: str | _Erased | None  # type: ignore[assignment]

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
        self.key_attname = f"{self.key_field}_id"
        setattr(cls, self.attname, _EncryptedDescriptor(self))

    # Conversions between the Python value and the bytes that get sealed.
    def encode(self, value: Any) -> bytes:
        return str(value).encode()

    def decode(self, raw: bytes) -> Any:
        return raw.decode()

    def _aad(self, instance: Any) -> bytes:
        """`amanah:v1:<table>.<column>:<pk>`: a value opens only where it belongs."""
        pk = instance.pk
        cached = instance.__dict__.get(_PK)
        if cached is None or cached[0] != pk:
            if pk is None:
                raise ValueError("Encrypted fields need the row's primary key first.")
            cached = instance.__dict__[_PK] = (pk, str(pk).encode())
        return self._aad_prefix + cached[1]

    @property
    def _aad_prefix(self) -> bytes:
        prefix = self.__dict__.get("_prefix")
        if prefix is None:
            table = self.model._meta.db_table
            prefix = self.__dict__["_prefix"] = (
                f"amanah:v1:{table}.{self.column}:".encode()
            )
        return prefix

    def key_destroyed(self, instance: Any) -> bool:
        data = instance.__dict__
        key_id = data.get(self.key_attname)
        if key_id is None:
            return False
        cached = data.get(_AEAD)
        if cached is not None and cached[0] == key_id:
            return cached[1] is None
        return self._aead(instance) is None

    def _aead(self, instance: Any):
        key_id = instance.__dict__.get(self.key_attname)
        if key_id is None:
            # The key row is gone (a row that outlives its customer, such as a data
            # request, loses it with them): what it sealed reads as erased.
            return None
        cached = instance.__dict__.get(_AEAD)
        if cached is not None and cached[0] == key_id:
            return cached[1]
        aead = aead_for_id(key_id, lambda: getattr(instance, self.key_field))
        instance.__dict__[_AEAD] = (key_id, aead)
        return aead

    def open(self, instance: Any, blob: bytes) -> Any:
        """Decrypt this field's stored value. Raises IntegrityFailure (logged)."""
        cached = instance.__dict__.get(_AEAD)
        if cached is not None and cached[0] == instance.__dict__.get(self.key_attname):
            aead = cached[1]
        else:
            aead = self._aead(instance)
        if aead is None:
            return ERASED
        try:
            return self.decode(unseal(aead, blob, self._aad(instance)))
        except IntegrityFailure:
            where = f"{instance._meta.db_table}.{self.column}:{instance.pk}"
            logger.error("crypto.integrity_failure", extra={"where": where})
            raise

    def pre_save(self, model_instance: Any, add: bool) -> bytes | None:
        data = model_instance.__dict__
        value = data.get(self.attname)
        if value is None or value is ERASED:
            return None
        if isinstance(value, bytes):
            return value  # unchanged since loaded or last saved
        aead = self._aead(model_instance)
        if aead is None:
            raise ValueError(
                "This record's data key was destroyed; it cannot hold data."
            )
        blob = seal(aead, self.encode(value), self._aad(model_instance))
        # Keep the instance as if just loaded: the next save writes the same ciphertext.
        data[self.attname] = blob
        data.setdefault(_PLAIN, {})[self.attname] = value
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

    def to_python(self, value: Any) -> Any:
        return value

    def value_to_string(self, obj: Any) -> str:
        # Serialisation (dumpdata) never decrypts.
        return "<sealed>"


class EncryptedDateField(EncryptedTextField):
    """A date sealed like text (ISO format inside the ciphertext)."""

    _pyi_private_set_type: date | str | None  # type: ignore[assignment]
    _pyi_private_get_type: date | _Erased | None  # type: ignore[assignment]

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
        if connection.vendor == "postgresql":
            return "char(64)"
        return super().db_type(connection)

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
        data = model_instance.__dict__
        source = data.get(self.source)
        if isinstance(source, bytes) and self.source not in data.get(_PLAIN, {}):
            # Ciphertext never decrypted here: unchanged since loaded, the index stands.
            return data.get(self.attname)
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
