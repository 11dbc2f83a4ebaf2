"""A request's "Anything we should know" text is the customer's own words: seal it
under their data key (the request's `data_key`), as a correction's new value is, so an
erasure takes it with the rest of their data. Text whose key is already destroyed or
gone (an erased or deleted customer's) is dropped: their erasure should have taken it.
Backward opens it again; what can no longer be opened comes back empty."""

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import migrations

import apps.crypto.fields
from apps.crypto.aead import seal, unseal
from apps.crypto.keys import unwrap_raw


def _aad(DataRequest, pk) -> bytes:
    # As apps.crypto.fields.EncryptedTextField binds a value to its table, column, row.
    return f"amanah:v1:{DataRequest._meta.db_table}.details:{pk}".encode()


def _cipher(DataKey, key_id, ciphers: dict) -> AESGCM | None:
    """The request's data key as a cipher; None once destroyed or deleted."""
    if key_id not in ciphers:
        row = (
            DataKey.objects.filter(pk=key_id)
            .values_list("wrapped_key", "kek_version", "destroyed_at")
            .first()
            if key_id is not None
            else None
        )
        if row is None or row[0] is None or row[2] is not None:
            ciphers[key_id] = None
        else:
            raw = unwrap_raw(
                data_key_id=key_id, wrapped=bytes(row[0]), kek_version=row[1]
            )
            ciphers[key_id] = AESGCM(raw)
    return ciphers[key_id]


def seal_details(apps, schema_editor):
    DataRequest = apps.get_model("dsr", "DataRequest")
    DataKey = apps.get_model("crypto", "DataKey")
    ciphers: dict = {}
    rows = DataRequest.objects.exclude(details_plain="").values_list(
        "pk", "details_plain", "data_key_id"
    )
    for pk, text, key_id in list(rows):
        cipher = _cipher(DataKey, key_id, ciphers)
        blob = (
            None
            if cipher is None or not text.strip()
            else seal(cipher, text.encode(), _aad(DataRequest, pk))
        )
        DataRequest.objects.filter(pk=pk).update(details=blob)


def open_details(apps, schema_editor):
    DataRequest = apps.get_model("dsr", "DataRequest")
    DataKey = apps.get_model("crypto", "DataKey")
    ciphers: dict = {}
    rows = DataRequest.objects.filter(details__isnull=False).values_list(
        "pk", "details", "data_key_id"
    )
    for pk, blob, key_id in list(rows):
        cipher = _cipher(DataKey, key_id, ciphers)
        if cipher is None:
            continue  # erased: stays empty
        text = unseal(cipher, bytes(blob), _aad(DataRequest, pk)).decode()
        DataRequest.objects.filter(pk=pk).update(details_plain=text)


class Migration(migrations.Migration):
    dependencies = [
        ("crypto", "0002_datakey_fillfactor"),
        ("dsr", "0002_honest_held_erasure_outcome"),
    ]

    operations = [
        migrations.RenameField("datarequest", "details", "details_plain"),
        migrations.AddField(
            model_name="datarequest",
            name="details",
            field=apps.crypto.fields.EncryptedTextField(
                help_text="What the customer wrote (“Anything we should know”), up "
                "to 500 characters.",
                key_field="data_key",
            ),
        ),
        migrations.RunPython(seal_details, open_details),
        migrations.RemoveField("datarequest", "details_plain"),
    ]
