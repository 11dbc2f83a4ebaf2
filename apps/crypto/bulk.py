"""Sealing many new rows at once (imports), without a model instance per row.

What `EncryptedTextField.pre_save` and `BlindIndexField.pre_save` do for one saved
instance, done here for a new row given as values: a fresh data key of its own (wrapped
under the master key in use, with the same associated data as `data_keys_new`), each
value sealed with AES-256-GCM in the storage format of `aead.seal` and the associated
data of its column and row (`amanah:v1:<table>.<column>:<pk>`), and blind indexes as
the field computes them. Rows sealed here read back through the model as any other.
"""

import hashlib
import hmac
import os
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import connection, models

from apps.core.db import bulk_insert
from apps.crypto.aead import FORMAT_V1, NONCE_BYTES
from apps.crypto.fields import BlindIndexField, Digest, EncryptedTextField
from apps.crypto.keyring import KEY_BYTES, blind_index_key, key_ring
from apps.crypto.keys import _wrap_aad
from apps.crypto.masterkeys import master_key_for_wrapping
from apps.crypto.models import DataKey

_V1 = bytes([FORMAT_V1])


def sealing_forks() -> bool:
    """True if a forked process may seal with this process's key ring: a ring of
    keys held in memory (AMANAH_MASTER_KEYS) may; an HSM's session may not be used
    across a fork."""
    ring, _version = master_key_for_wrapping()
    return ring.provider == "env"


class BulkSealer:
    """Seals new rows of `model` whose encrypted columns are `fields` (in that order),
    each under a data key of its own. Built once per batch: the master key in use is
    looked up here, unless its `version` is given (a process that must not query,
    such as an import's worker: this process's key ring must hold it)."""

    def __init__(
        self,
        model: type[models.Model],
        fields: Sequence[str],
        *,
        version: int | None = None,
    ):
        if version is None:
            self.ring, self.version = master_key_for_wrapping()
        else:
            self.ring, self.version = key_ring(), version
            if version not in self.ring.versions():
                raise self.ring.missing(version)
        self.fields = list(fields)
        self.prefixes = []
        self.encoders = []
        for name in self.fields:
            field = model._meta.get_field(name)
            if not isinstance(field, EncryptedTextField):
                raise TypeError(f"{model.__name__}.{name} is not encrypted.")
            self.prefixes.append(field._aad_prefix)
            self.encoders.append(field.encode)
        # (id, wrapped key) of each data key made, for `data_keys_insert`.
        self.keys: list[tuple[uuid.UUID, bytes]] = []

    def seal(self, pk: Any, values: Sequence[Any]) -> tuple[uuid.UUID, list[Any]]:
        """A new data key for the row `pk` and its `values` (in `fields` order; None
        stays None) sealed under it. Returns (the data key's id, the ciphertexts)."""
        random = os.urandom(16 + KEY_BYTES + NONCE_BYTES * len(values))
        key_id = uuid.UUID(bytes=random[:16], version=4)  # as uuid4() makes one
        dek = random[16 : 16 + KEY_BYTES]
        self.keys.append((key_id, self.ring.wrap(self.version, dek, _wrap_aad(key_id))))
        aead = AESGCM(dek)
        row_aad = str(pk).encode()
        sealed: list[Any] = []
        at = 16 + KEY_BYTES
        for value, prefix, encode in zip(
            values, self.prefixes, self.encoders, strict=True
        ):
            if value is None:
                sealed.append(None)
                continue
            nonce = random[at : at + NONCE_BYTES]
            at += NONCE_BYTES
            plain = value.encode() if type(value) is str else encode(value)
            sealed.append(_V1 + nonce + aead.encrypt(nonce, plain, prefix + row_aad))
        return key_id, sealed


def data_keys_insert(
    *, keys: Sequence[tuple[uuid.UUID, bytes]], version: int, now: datetime
) -> int:
    """Store data keys made by a `BulkSealer` (id, wrapped key; under master key
    `version`) in one statement, in the caller's transaction. Returns how many."""
    return rows_copy(
        DataKey,
        columns=["id", "wrapped_key"],
        rows=keys,
        constants={"kek_version": version, "created_at": now},
    )


# Binary COPY element types, by the column's database type.
_COPY_TYPES = {
    "uuid": "uuid",
    "bytea": "bytea",
    "timestamp with time zone": "timestamptz",
    "integer": "int4",
    "bigint": "int8",
    "boolean": "bool",
    "text": "text",
}


def _copy_type(field: Any) -> str | None:
    db_type = field.db_type(connection) or ""
    if db_type.startswith(("varchar(", "char(")):
        return "text"  # the same binary form; the column checks the length
    return _COPY_TYPES.get(db_type)


def rows_copy(
    model: type[models.Model],
    *,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    constants: dict[str, Any] | None = None,
) -> int:
    """Insert new sealed rows (values in the order of `columns`, each also holding
    `constants`) as `bulk_insert` does, but on PostgreSQL with a binary COPY: the
    rows are encoded by psycopg's C code, where arrays of ciphertexts were dumped
    element by element in Python (bench/import.py). In the caller's transaction;
    database errors arrive as Django's (a duplicate as IntegrityError). Columns of a
    type it does not know, and other databases, go through `bulk_insert`."""
    if not rows:
        return 0
    constants = dict(constants or {})
    fields = [model._meta.get_field(name) for name in [*columns, *constants]]
    types = [_copy_type(field) for field in fields]
    if connection.vendor != "postgresql" or None in types:
        return bulk_insert(model, columns=columns, rows=rows, constants=constants)
    names = ", ".join(f'"{field.column}"' for field in fields)  # type: ignore[union-attr]
    tail = tuple(constants.values())
    with connection.wrap_database_errors, connection.cursor() as cursor:
        copy_sql = f'COPY "{model._meta.db_table}" ({names}) FROM STDIN (FORMAT binary)'
        with cursor.cursor.copy(copy_sql) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row((*row, *tail))
    return len(rows)


class BlindIndexer:
    """`BlindIndexField.digest` for many values: the key read once, and a value the
    caller has already normalised (a phone in E.164 from its validation) not parsed
    again."""

    def __init__(self, field: BlindIndexField):
        self.field = field
        self.prefix = f"{field.scope}\x00".encode()
        self.mac = hmac.new(blind_index_key(), b"", hashlib.sha256)

    def normalized(self, normalized: str) -> Digest:
        """The digest of a value already in the field's normal form."""
        mac = self.mac.copy()
        mac.update(self.prefix + normalized.encode())
        return Digest(mac.hexdigest())

    def digest(self, plain: str) -> Digest:
        """As `BlindIndexField.digest`: normalised first (raises ValueError)."""
        return self.normalized(self.field.normalizer(plain))
