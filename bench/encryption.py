"""What field encryption costs: our path beside the naive way and the raw limit.

1. One field sealed and opened through EncryptedTextField, vs Fernet, vs bare AES-GCM.
2. The customer list API as a privacy admin, 1,000 rows of masked PII with the access
   policy and the access log, vs the same API, policy and log over plaintext columns,
   vs a plain SQL SELECT of those rows.
3. `data_keys_rotate` over every customer's data key vs a bare in-memory rewrap.
4. Lookup by email through the blind index vs an indexed plaintext column vs plain SQL.

Through SoftHSM2 (`AMANAH_KEY_PROVIDER=pkcs11`, on a token this run makes in a
temporary directory of its own and deletes; left out, saying so, without softhsm2):

5. `data_keys_rotate` from the `env` master key into a version made in the HSM
   (`master_key_create`; `AMANAH_MASTER_KEYS` stays set beside the HSM, as when moving
   to it), vs a bare in-memory AES-GCM unwrap and PKCS#11 encrypt per key (no DB); then
   from that version into the next one made in the HSM, the rotation every key epoch
   runs, vs a bare PKCS#11 decrypt and encrypt per key.
6. The customer list API's first page of 50 under `pkcs11` vs `env`, on the same 50
   customers in one interleaved run: their data keys' rows as they were under the
   `env` key (saved before rotation 5) and as rotation 5 left them are written back in
   turn, untimed, before each call of the provider that reads them. The raw limit is
   what any page through the HSM must do: SELECT the 50 rows with their wrapped keys
   in plain SQL and unwrap the 50 keys with bare PKCS#11 decrypts.
7. `manage.py reapply_erasures` over a journal of one "erased" line per loaded
   customer, each at its own time (the worst case for the service, which groups
   customers by time), on the state a restore leaves (every one still readable), vs
   the naive way, `customer_shred` per journal line (1,000 other customers, scaled to
   the journal's length), vs one plain SQL statement destroying the same data keys and
   clearing the same columns (rolled back, then vacuumed). The goal is 60 s for
   100,000 lines; a smaller run is held to the same rate.

`BENCH_CUSTOMERS=10000` gives a quick, smaller run; the goals are set for 100,000.
"""
# ruff: noqa: E402 - Django must be configured before the models are imported.

import base64
import io
import itertools
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import _setup
from _setup import Row

DB_NAME = _setup.configure_django()

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.management import call_command
from django.db import connection, models, transaction
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from apps.access.api import CUSTOMER_ORDER, CustomerListCreateApi
from apps.access.models import AccessLogEntry
from apps.access.selectors import access_context, policy_matrix
from apps.access.services.log import access_log_purpose
from apps.access.services.reads import _shape
from apps.accounts.models import Role, User
from apps.core.pagination import paginated_response
from apps.crypto.fields import EncryptedTextField
from apps.crypto.keyring import key_ring
from apps.crypto.keys import data_key_new, key_scope
from apps.crypto.models import DataKey
from apps.crypto.services import data_keys_rotate, master_key_create
from apps.customers.journal import (
    JournalEntry,
    UnreadableLine,
    _lines,
    erasure_journal_read,
)
from apps.customers.models import Customer, ErasureAction, ErasureJournalPending
from apps.customers.registry import PII_FIELD_NAMES
from apps.customers.services import customer_shred, customers_bulk_create
from tests.hsm import LIBRARY as HSM_LIBRARY
from tests.hsm import SoftHsm, softhsm_make

CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "100000"))
FIELD_LOOPS = 20_000
PAGE_SIZE = 1_000
API_RUNS = 15
LOOKUPS = 2_000
LOOKUP_WARMUP = 200
LOAD_BATCH = 5_000
ROTATE_BATCH = 5_000  # the default of `manage.py rotate_keys`
# The bench token's own PINs: it is made and deleted by this run and holds bench keys.
HSM_KEY_LABEL = "amanah-bench"
HSM_PAGE_SIZE = 50
HSM_PAGE_RUNS = 41
REAPPLY_NAIVE_SAMPLE = 1_000
REAPPLY_GOAL_LINES = 100_000
REAPPLY_GOAL_SECONDS = 60

# Two addresses of 40 bytes each (a typical PII field).
FIELD_VALUES = (
    "amanah.bench.customer.0001@example.co.id",
    "amanah.bench.customer.0002@example.co.id",
)

PLAIN_TABLE = "bench_plain_customer"
# The columns `_setup.customer_rows` fills, in COPY order.
PLAIN_LOADED = (
    "id, status, country, region, created_at, last_activity_at, closed_at, "
    "erased_at, full_name, email, phone, address_line, city, national_id"
)
PLAIN_COLUMNS = (
    PLAIN_LOADED + ", postal_code, date_of_birth, notes, payment_token, card_last4"
)
PLAIN_LOG_TABLE = "bench_plain_access_log"


class PlainCustomer(models.Model):
    """Customer with its PII in plaintext columns: the baseline encryption is weighed
    against. Same columns and indexes as Customer (less the data key and the user),
    plus one on email.

    The schema editor skips the indexes of an unmanaged model, so all of them are in
    Meta.indexes, which `plain_tables_fill` adds one by one.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=16, default="active")
    country = models.CharField(max_length=2)
    region = models.CharField(max_length=6, blank=True)
    created_at = models.DateTimeField()
    last_activity_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    full_name = models.TextField()
    email = models.TextField()
    phone = models.TextField()
    address_line = models.TextField()
    city = models.TextField()
    national_id = models.TextField()
    # Left NULL, like the encrypted fields the bench customers leave empty.
    postal_code = models.TextField(null=True)  # noqa: DJ001
    date_of_birth = models.DateField(null=True)
    notes = models.TextField(null=True)  # noqa: DJ001
    payment_token = models.TextField(null=True)  # noqa: DJ001
    card_last4 = models.TextField(null=True)  # noqa: DJ001

    class Meta:
        app_label = "customers"
        managed = False
        db_table = PLAIN_TABLE
        indexes = [
            models.Index(fields=["email"], name="bench_plain_email_idx"),
            models.Index(fields=["created_at"], name="bench_plain_created_idx"),
            models.Index(fields=["last_activity_at"], name="bench_plain_activity_idx"),
            models.Index(fields=["country", "region"], name="bench_plain_country_idx"),
            models.Index(fields=["status", "closed_at"], name="bench_plain_status_idx"),
        ]

    def __str__(self) -> str:
        return f"PlainCustomer {self.pk}"

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None


class PlainAccessLogEntry(models.Model):
    """access_accesslogentry's columns, indexes and foreign keys (customer, staff;
    deferred, as Django makes them), pointing at the plaintext table: the plaintext
    list writes its access log here, one row per customer shown, paying the same
    checks at commit as ours."""

    staff_id = models.BigIntegerField()
    staff_role = models.CharField(max_length=32)
    customer_id = models.UUIDField()
    fields = models.JSONField(default=dict)
    purpose = models.CharField(max_length=16)
    interaction_id = models.UUIDField(null=True)
    reveal_id = models.BigIntegerField(null=True)
    created_at = models.DateTimeField()

    class Meta:
        app_label = "access"
        managed = False
        db_table = PLAIN_LOG_TABLE
        indexes = [
            models.Index(fields=["created_at"], name="bench_plog_created_idx"),
            models.Index(fields=["customer_id"], name="bench_plog_customer_idx"),
            models.Index(fields=["staff_id"], name="bench_plog_staff_idx"),
            models.Index(fields=["interaction_id"], name="bench_plog_inter_idx"),
            models.Index(fields=["reveal_id"], name="bench_plog_reveal_idx"),
            models.Index(
                fields=["customer_id", "created_at"], name="bench_plog_cust_at_idx"
            ),
            models.Index(
                fields=["staff_id", "created_at"], name="bench_plog_staff_at_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"PlainAccessLogEntry {self.pk}"


def plain_read(*, actor: User, customers: list[PlainCustomer]) -> list[dict[str, Any]]:
    """`customers_read` over plaintext: the same policy, access context, shaping and
    one-statement access log (as `access_log_write`), without the data-key preload."""
    matrix = policy_matrix()
    context = access_context(actor=actor, customer_ids=[c.pk for c in customers])
    results, entries = [], []
    for customer in customers:
        interaction = context.interactions.get(customer.pk)
        reveals = context.reveals.get(customer.pk, [])
        revealed = {name for reveal in reveals for name in reveal.fields}
        data, shown = _shape(
            actor=actor,
            customer=customer,
            matrix=matrix,
            revealed=revealed,
            capped=False,
        )
        if reveals:
            data["reveal_expires_at"] = max(r.expires_at for r in reveals)
        results.append(data)
        if shown:
            entries.append(
                (
                    customer.pk,
                    json.dumps(shown),
                    access_log_purpose(
                        actor=actor, kind=interaction.kind if interaction else None
                    ),
                    interaction.pk if interaction else None,
                    reveals[-1].pk if reveals else None,
                )
            )
    columns = list(zip(*entries, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {PLAIN_LOG_TABLE} (staff_id, staff_role, customer_id, "
            "fields, purpose, interaction_id, reveal_id, created_at) "
            "SELECT %s, %s, t.c, t.f::jsonb, t.p, t.i, t.r, %s "
            "FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::uuid[], %s::bigint[]) "
            "AS t(c, f, p, i, r)",
            [actor.pk, actor.role, timezone.now(), *(list(c) for c in columns)],
        )
    return results


class PlainCustomerListApi(APIView):
    """CustomerListCreateApi.get for a governance role over plaintext columns: same
    permission, order, pagination, policy, masking and access log, no decryption."""

    permission_classes = CustomerListCreateApi.permission_classes

    def get(self, request: Request) -> Response:
        return paginated_response(
            request=request,
            order=CUSTOMER_ORDER,
            items=PlainCustomer.objects.all(),
            serialize=lambda page: plain_read(actor=request.user, customers=page),
        )


# Data


def plain_tables_fill(count: int, *, start: datetime) -> None:
    """Create the plaintext tables, COPY the same customers in, then index them."""
    with connection.schema_editor() as editor:
        editor.create_model(PlainCustomer)
        editor.create_model(PlainAccessLogEntry)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {PLAIN_TABLE} ({PLAIN_LOADED}) FROM STDIN") as copy,
    ):
        for row in _setup.customer_rows(count, start=start):
            copy.write_row(
                (
                    uuid.uuid4(),
                    "active",
                    row["country"],
                    "",
                    row["created_at"],
                    row["last_activity_at"],
                    None,
                    None,
                    row["full_name"],
                    row["email"],
                    row["phone"],
                    row["address_line"],
                    row["city"],
                    row["national_id"],
                )
            )
    with connection.schema_editor() as editor:
        for model in (PlainCustomer, PlainAccessLogEntry):
            for index in model._meta.indexes:
                editor.add_index(model, index)
    with connection.cursor() as cursor:
        for column, target in (
            ("customer_id", PLAIN_TABLE),
            ("staff_id", "accounts_user"),
        ):
            cursor.execute(
                f"ALTER TABLE {PLAIN_LOG_TABLE} ADD FOREIGN KEY ({column}) "
                f"REFERENCES {target} (id) DEFERRABLE INITIALLY DEFERRED"
            )


# Measurements


def bench_field() -> Row:
    """1. Seal and open one 40-byte field: our model field vs Fernet vs bare AES-GCM."""
    customer = Customer(data_key=data_key_new())
    field = Customer._meta.get_field("email")
    assert isinstance(field, EncryptedTextField)
    # A new value on every call: pre_save passes an unchanged value's ciphertext
    # through, and reading `customer.email` after it hits the plaintext cache; `open`
    # decrypts the blob it is given, uncached. The data key's cipher and the AAD's pk
    # bytes stay cached on the instance, as they do for every field of a loaded row.
    values = itertools.cycle(FIELD_VALUES)

    def ours() -> None:
        customer.email = next(values)
        blob = field.pre_save(customer, add=True)
        assert isinstance(blob, bytes)
        field.open(customer, blob)

    customer.email = FIELD_VALUES[0]
    assert field.open(customer, field.pre_save(customer, add=True)) == FIELD_VALUES[0]

    fernet = Fernet(Fernet.generate_key())

    def naive() -> None:
        fernet.decrypt(fernet.encrypt(FIELD_VALUES[0].encode())).decode()

    bare = AESGCM(AESGCM.generate_key(bit_length=256))
    plaintext = FIELD_VALUES[0].encode()
    # An AAD as long as the field's, so the ratio is our Python overhead alone.
    aad = f"amanah:v1:customers_customer.email:{customer.pk}".encode()

    def raw() -> None:
        nonce = os.urandom(12)
        bare.decrypt(nonce, bare.encrypt(nonce, plaintext, aad), aad)

    ours_us, naive_us, raw_us = (
        _setup.best_of(func, number=FIELD_LOOPS) * 1e6 for func in (ours, naive, raw)
    )
    return Row(
        "field encrypt+decrypt (µs/op)",
        ours_us,
        naive_us,
        raw_us,
        goal="≤3x raw",
        ok=ours_us <= 3 * raw_us,
        naive_label="Fernet",
        raw_label="AESGCM",
        fmt="{:.2f}",
    )


def bench_api(admin: User) -> Row:
    """2. GET 1,000 masked customers as a privacy admin: our API (policy, masking, one
    access-log insert) vs the same on plaintext columns vs SQL."""
    factory = APIRequestFactory()

    def call(view: Callable[..., Response]) -> Response:
        request = factory.get("/api/v1/customers/", {"page_size": PAGE_SIZE})
        force_authenticate(request, user=admin)
        with key_scope():  # as KeyScopeMiddleware does for every request
            response = view(request)
            response.render()
        assert response.status_code == 200, response.status_code
        return response

    ours_view = CustomerListCreateApi.as_view()
    plain_view = PlainCustomerListApi.as_view()

    # Both must serve the same page, or the comparison means nothing.
    ours_page = json.loads(call(ours_view).content)["results"]
    plain_page = json.loads(call(plain_view).content)["results"]
    assert len(ours_page) == PAGE_SIZE
    assert [_without_id(r) for r in ours_page] == [_without_id(r) for r in plain_page]
    assert all(set(r["shown"].values()) == {"masked"} for r in ours_page)
    logged = (AccessLogEntry.objects.count(), PlainAccessLogEntry.objects.count())
    assert logged == (PAGE_SIZE, PAGE_SIZE), logged

    def raw() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {PLAIN_COLUMNS} FROM {PLAIN_TABLE} "
                "ORDER BY created_at DESC, id LIMIT %s",
                [PAGE_SIZE],
            )
            assert len(cursor.fetchall()) == PAGE_SIZE

    ours_ms, plain_ms, raw_ms = (
        seconds * 1e3
        for seconds in _setup.median_interleaved(
            [lambda: call(ours_view), lambda: call(plain_view), raw], runs=API_RUNS
        )
    )
    return Row(
        f"API list {PAGE_SIZE:,} customers (ms)",
        ours_ms,
        plain_ms,
        raw_ms,
        goal="≤1.5x plain",
        ok=ours_ms <= 1.5 * plain_ms,
        naive_label="plain",
        raw_label="SQL",
    )


def _without_id(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "id"}


def bench_lookup(count: int) -> Row:
    """4. One customer by email: blind index vs indexed plaintext column vs SQL."""
    rng = random.Random(4)
    emails = [
        f"customer{rng.randrange(count):06d}@bench.example"
        for _ in range(LOOKUP_WARMUP + LOOKUPS)
    ]

    def ours(email: str) -> None:
        Customer.objects.filter(email_index=email).get()

    def plain(email: str) -> None:
        PlainCustomer.objects.filter(email=email).get()

    samples: list[list[float]] = [[], [], []]
    with connection.cursor() as cursor:

        def raw(email: str) -> None:
            cursor.execute(
                f"SELECT {PLAIN_COLUMNS} FROM {PLAIN_TABLE} WHERE email = %s", [email]
            )
            assert cursor.fetchone() is not None

        # Interleaved per email, so drift lands on all three alike.
        for i, email in enumerate(emails):
            for func, sample in zip((ours, plain, raw), samples, strict=True):
                start = time.perf_counter()
                func(email)
                if i >= LOOKUP_WARMUP:
                    sample.append(time.perf_counter() - start)
    ours_us, plain_us, raw_us = (statistics.median(s) * 1e6 for s in samples)
    return Row(
        f"lookup by email in {count:,} (µs)",
        ours_us,
        plain_us,
        raw_us,
        goal="≤1.5x plain",
        ok=ours_us <= 1.5 * plain_us,
        naive_label="plain",
        raw_label="SQL",
    )


def bench_rotation() -> Row:
    """3. Rewrap every data key under a new master key: the service vs bare AES-GCM.

    Run last: it changes the key ring and rewrites every data key.
    """
    v2 = base64.b64encode(os.urandom(32)).decode()
    settings.AMANAH_MASTER_KEYS = f"2:{v2},{settings.AMANAH_MASTER_KEYS}"
    keys = DataKey.objects.count()
    start = time.perf_counter()
    result = data_keys_rotate(actor=None, batch_size=ROTATE_BATCH)
    elapsed = time.perf_counter() - start
    assert result.rewrapped == keys, (result.rewrapped, keys)
    assert result.remaining == 0, result.remaining
    ours = keys / elapsed
    raw = keys / _bare_rewrap_seconds(keys)
    return Row(
        f"rotate {keys:,} data keys (keys/s)",
        ours,
        None,
        raw,
        goal="≥50,000/s",
        ok=ours >= 50_000,
        raw_label="AESGCM",
        fmt="{:,.0f}",
        higher_is_better=True,
    )


def _bare_rewrap_seconds(count: int) -> float:
    """Seconds to unwrap and rewrap `count` keys in memory with two cached ciphers."""
    old = AESGCM(AESGCM.generate_key(bit_length=256))
    new = AESGCM(AESGCM.generate_key(bit_length=256))
    aads = [f"amanah:dek:{uuid.uuid4()}".encode() for _ in range(count)]
    wrapped = []
    for aad in aads:
        nonce = os.urandom(12)
        wrapped.append(nonce + old.encrypt(nonce, os.urandom(32), aad))
    rewrapped = []
    start = time.perf_counter()
    for blob, aad in zip(wrapped, aads, strict=True):
        key = old.decrypt(blob[:12], blob[12:], aad)
        nonce = os.urandom(12)
        rewrapped.append(nonce + new.encrypt(nonce, key, aad))
    return time.perf_counter() - start


# Through SoftHSM2


def softhsm_token(root: Path) -> SoftHsm | None:
    """A SoftHSM2 token of this run's own (the tests' helper, tests/hsm.py)."""
    return softhsm_make(root, prefix="amanah-bench")


def provider_use(name: str) -> None:
    """Switch the key provider (`env` or `pkcs11`); the ring is read per call."""
    settings.AMANAH_KEY_PROVIDER = name


def bare_session(hsm: SoftHsm) -> Any:
    """A PKCS#11 session of the bench's own on the token, beside the key ring's, which
    must have logged in first: PKCS#11 logs in the application, not the session, so
    this one shares that login, and closing it does not log the ring out (python-pkcs11
    logs out when it closes a session that logged in, invalidating every handle)."""
    from apps.crypto.hsm import _library

    key_ring().versions()  # the ring's session opens and logs in
    token = _library(hsm.library).get_token(token_label=hsm.token)
    return token.open(rw=True)


def bare_hsm_key(session: Any) -> Any:
    """An AES-256 key made on the token as the key ring makes master keys: a private
    token object, sensitive, not extractable (SoftHSM2 decrypts a private object's
    value on every use, which a session key would skip: a quarter slower). Its label
    is not one the ring reads; the caller destroys it."""
    from pkcs11 import Attribute, KeyType

    return session.generate_key(
        KeyType.AES,
        256,
        store=True,
        label=f"bench-bare-{uuid.uuid4().hex[:8]}",
        template={
            Attribute.TOKEN: True,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
        },
    )


def bare_hsm_rewrap_seconds(session: Any, count: int, *, from_hsm: bool) -> float:
    """Seconds to unwrap `count` 32-byte keys (bare AES-GCM in memory, or a PKCS#11
    decrypt with `from_hsm`) and wrap each again with a PKCS#11 encrypt, in a loop,
    with no database and no key ring."""
    new, old_hsm = bare_hsm_key(session), bare_hsm_key(session)
    try:
        return _bare_hsm_rewrap_loop(count, new=new, old_hsm=old_hsm, from_hsm=from_hsm)
    finally:
        new.destroy()
        old_hsm.destroy()


def _bare_hsm_rewrap_loop(
    count: int, *, new: Any, old_hsm: Any, from_hsm: bool
) -> float:
    from pkcs11 import Mechanism
    from pkcs11.mechanisms import GCMParams

    gcm = Mechanism.AES_GCM
    old_aes = AESGCM(AESGCM.generate_key(bit_length=256))
    aads = [f"amanah:dek:{uuid.uuid4()}".encode() for _ in range(count)]
    wrapped = []
    for aad in aads:
        nonce, key = os.urandom(12), os.urandom(32)
        if from_hsm:
            params = GCMParams(nonce, aad, 128)
            blob = old_hsm.encrypt(key, mechanism=gcm, mechanism_param=params)
        else:
            blob = old_aes.encrypt(nonce, key, aad)
        wrapped.append((nonce, blob))

    def decrypt(nonce: bytes, blob: bytes, aad: bytes) -> bytes:
        params = GCMParams(nonce, aad, 128)
        return old_hsm.decrypt(blob, mechanism=gcm, mechanism_param=params)

    unwrap = decrypt if from_hsm else old_aes.decrypt
    rewrapped = []
    start = time.perf_counter()
    for (nonce, blob), aad in zip(wrapped, aads, strict=True):
        key = unwrap(nonce, blob, aad)
        nonce = os.urandom(12)
        params = GCMParams(nonce, aad, 128)
        rewrapped.append(
            nonce + new.encrypt(key, mechanism=gcm, mechanism_param=params)
        )
    return time.perf_counter() - start


def bench_hsm_rotation(session: Any, *, from_hsm: bool) -> Row:
    """5. Make the next master key version in the HSM and rotate every data key into
    it: from an `env` version, or (`from_hsm`) from one in the HSM."""
    version, secret = master_key_create(actor=None)
    assert secret is None, "pkcs11 keeps the key it makes"
    keys = DataKey.objects.filter(destroyed_at__isnull=True).count()
    # The bare loop before and after the service, the faster taken: the CPU's speed
    # drifts over a run (turbo, neighbours), and the limit is the best it showed.
    raw_seconds = bare_hsm_rewrap_seconds(session, keys, from_hsm=from_hsm)
    before = set(DataKey.objects.values_list("kek_version", flat=True).distinct())
    in_hsm = set(key_ring().versions()) - set(_env_versions())
    assert (before <= in_hsm) == from_hsm, (before, in_hsm)
    start = time.perf_counter()
    result = data_keys_rotate(actor=None, batch_size=ROTATE_BATCH)
    elapsed = time.perf_counter() - start
    assert result.to_version == version, (result.to_version, version)
    assert result.rewrapped == keys, (result.rewrapped, keys)
    assert result.remaining == 0, result.remaining
    assert version in set(key_ring().versions()) - set(_env_versions())
    ours = keys / elapsed
    raw_seconds = min(
        raw_seconds, bare_hsm_rewrap_seconds(session, keys, from_hsm=from_hsm)
    )
    raw = keys / raw_seconds
    source = "SoftHSM2" if from_hsm else "env"
    return Row(
        f"rotate {keys:,} keys {source}→SoftHSM2 (keys/s)",
        ours,
        None,
        raw,
        goal="≥20,000/s",
        ok=ours >= 20_000,
        raw_label="PKCS#11" if from_hsm else "AESGCM+PKCS#11",
        fmt="{:,.0f}",
        higher_is_better=True,
    )


def _env_versions() -> list[int]:
    return [int(part.split(":")[0]) for part in settings.AMANAH_MASTER_KEYS.split(",")]


@dataclass(frozen=True)
class HsmPage:
    """The API's first page of 50, and its data keys as they were under `env`."""

    call: Callable[[], Response]
    customer_ids: list[Any]
    results: list[dict[str, Any]]
    env_keys: list[tuple[Any, bytes, int]]


def hsm_page_before_rotation(admin: User) -> HsmPage:
    """Read the first page of 50 under `env` and keep its data keys' rows."""
    factory = APIRequestFactory()
    view = CustomerListCreateApi.as_view()

    def call() -> Response:
        request = factory.get("/api/v1/customers/", {"page_size": HSM_PAGE_SIZE})
        force_authenticate(request, user=admin)
        with key_scope():
            response = view(request)
            response.render()
        assert response.status_code == 200, response.status_code
        return response

    results = json.loads(call().content)["results"]
    assert len(results) == HSM_PAGE_SIZE, len(results)
    ids = [result["id"] for result in results]
    return HsmPage(call, ids, results, _page_keys(ids))


def _page_keys(customer_ids: list[Any]) -> list[tuple[Any, bytes, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT d.id, d.wrapped_key, d.kek_version FROM crypto_datakey d "
            "JOIN customers_customer c ON c.data_key_id = d.id "
            "WHERE c.id = ANY(%s::uuid[]) ORDER BY d.id",
            [customer_ids],
        )
        return [(pk, bytes(blob), version) for pk, blob, version in cursor.fetchall()]


def _page_keys_write(keys: list[tuple[Any, bytes, int]]) -> None:
    ids, blobs, versions = (list(column) for column in zip(*keys, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE crypto_datakey AS d SET wrapped_key = v.w, kek_version = v.k "
            "FROM unnest(%s::uuid[], %s::bytea[], %s::int[]) AS v(id, w, k) "
            "WHERE d.id = v.id",
            [ids, blobs, versions],
        )


def bench_hsm_page(page: HsmPage, session: Any) -> Row:
    """6. The first page of 50 under `pkcs11` vs `env`, same rows, interleaved."""
    from pkcs11 import Mechanism, ObjectClass
    from pkcs11.mechanisms import GCMParams

    hsm_keys = _page_keys(page.customer_ids)
    env_versions = set(_env_versions())
    assert {v for _, _, v in page.env_keys} <= env_versions
    hsm_versions = {v for _, _, v in hsm_keys}
    assert len(hsm_versions) == 1, hsm_versions
    assert not hsm_versions & env_versions, hsm_versions
    label = f"{settings.AMANAH_PKCS11_KEY_LABEL}-v{hsm_versions.pop()}"
    master = session.get_key(object_class=ObjectClass.SECRET_KEY, label=label)

    def env_state() -> None:
        provider_use("env")
        _page_keys_write(page.env_keys)

    def hsm_state() -> None:
        provider_use("pkcs11")
        _page_keys_write(hsm_keys)

    # Both serve the same page. The HSM's rows are under a version that is not in
    # AMANAH_MASTER_KEYS (asserted above), so under pkcs11 the HSM unwraps them all.
    for state in (env_state, hsm_state):
        state()
        results = json.loads(page.call().content)["results"]
        assert [_without_id(r) for r in results] == [
            _without_id(r) for r in page.results
        ]

    def raw() -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT c.id, {', '.join(_customer_columns())}, d.id, d.wrapped_key "
                "FROM customers_customer c "
                "JOIN crypto_datakey d ON d.id = c.data_key_id "
                "ORDER BY c.created_at DESC, c.id LIMIT %s",
                [HSM_PAGE_SIZE],
            )
            rows = cursor.fetchall()
        for row in rows:
            blob = bytes(row[-1])
            params = GCMParams(blob[1:13], f"amanah:dek:{row[-2]}".encode(), 128)
            master.decrypt(
                blob[13:], mechanism=Mechanism.AES_GCM, mechanism_param=params
            )
        assert len(rows) == HSM_PAGE_SIZE

    env_ms, hsm_ms, raw_ms = (
        seconds * 1e3
        for seconds in _setup.median_interleaved(
            [page.call, page.call, raw],
            runs=HSM_PAGE_RUNS,
            before=[env_state, hsm_state, hsm_state],
        )
    )
    hsm_state()  # the state rotation left, for what follows
    return Row(
        f"API page of {HSM_PAGE_SIZE} via SoftHSM2 (ms)",
        hsm_ms,
        env_ms,
        raw_ms,
        goal="≤2x env",
        ok=hsm_ms <= 2 * env_ms,
        naive_label="env",
        raw_label="SQL+PKCS#11",
        fmt="{:.2f}",
    )


def _customer_columns() -> list[str]:
    return [
        f"c.{field.column}"
        for field in Customer._meta.concrete_fields
        if field.column not in {"id", "data_key_id"}
    ]


# Restoring from a backup


def journal_write(
    path: Path, pairs: Sequence[tuple[Any, Any]], *, first: datetime
) -> int:
    """Write an erasure journal naming `pairs` ((customer, data key)), one "erased"
    line each, a second apart, in the journal's own line format. Returns the lines."""
    with path.open("w") as journal:
        for i, (customer, key) in enumerate(pairs):
            pending = ErasureJournalPending(
                action=ErasureAction.ERASED,
                at=first + timedelta(seconds=i),
                customers=[[str(customer), str(key)]],
            )
            journal.writelines(_lines(pending))
    entries = list(erasure_journal_read(path))
    assert all(not isinstance(e, UnreadableLine) for e in entries)
    assert len(entries) == len(pairs), (len(entries), len(pairs))
    return len(entries)


def reapply_raw_seconds(path: Path) -> float:
    """One plain SQL statement doing what reapplying the journal at `path` does to
    the database (destroy the data keys; clear the PII and blind indexes; set each
    erasure's time), rolled back, then the tables vacuumed."""
    entries = [e for e in erasure_journal_read(path) if isinstance(e, JournalEntry)]
    ids = [e.customer for e in entries]
    times = [e.at for e in entries]
    columns = [Customer._meta.get_field(name).column for name in PII_FIELD_NAMES]
    cleared = ", ".join(
        f"{column} = NULL" for column in [*columns, "email_index", "phone_index"]
    )
    statement = (
        "WITH keys AS (UPDATE crypto_datakey AS d "
        "SET wrapped_key = NULL, destroyed_at = now() FROM customers_customer AS c "
        "WHERE c.data_key_id = d.id AND c.id = ANY(%s::uuid[]) "
        "AND c.erased_at IS NULL RETURNING d.id) "
        f"UPDATE customers_customer AS c SET {cleared}, erased_at = t.at "
        "FROM unnest(%s::uuid[], %s::timestamptz[]) AS t(id, at) "
        "WHERE c.id = t.id AND c.erased_at IS NULL"
    )

    class Rollback(Exception):
        pass

    elapsed = 0.0
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            start = time.perf_counter()
            cursor.execute(statement, [ids, ids, times])
            elapsed = time.perf_counter() - start
            assert cursor.rowcount == len(ids), (cursor.rowcount, len(ids))
            raise Rollback
    except Rollback:
        pass
    _setup.vacuum_analyze("customers_customer", "crypto_datakey")
    return elapsed


def bench_reapply(root: Path, first_created: datetime) -> Row:
    """7. `reapply_erasures` over a journal of every loaded customer, vs
    `customer_shred` per line (on other customers, scaled), vs one SQL statement."""
    pairs = list(
        Customer.objects.filter(erased_at__isnull=True)
        .order_by("created_at")
        .values_list("pk", "data_key_id")
    )
    count = len(pairs)
    # The naive way's customers: new ones, so the journal's stay as a restore left
    # them (`customer_rows` numbers them on from the loaded ones; no email repeats).
    sample_rows = itertools.islice(
        _setup.customer_rows(count + REAPPLY_NAIVE_SAMPLE, start=first_created),
        count,
        None,
    )
    customers_bulk_create(rows=sample_rows, batch_size=LOAD_BATCH)
    journaled = {customer for customer, _ in pairs}
    sample = [
        pair
        for pair in Customer.objects.order_by("created_at").values_list(
            "pk", "data_key_id"
        )
        if pair[0] not in journaled
    ]
    assert len(sample) == REAPPLY_NAIVE_SAMPLE, len(sample)
    erased_from = timezone.now() - timedelta(days=30)
    journal = root / "restore-journal.jsonl"
    lines = journal_write(journal, pairs, first=erased_from)
    naive_journal = root / "naive-journal.jsonl"
    journal_write(naive_journal, sample, first=erased_from)
    _setup.vacuum_analyze("customers_customer", "crypto_datakey")

    # A restore's state: every customer the journal names is here and readable.
    with key_scope():
        newest = Customer.objects.get(pk=pairs[-1][0])
        assert newest.email == f"customer{count - 1:06d}@bench.example"
    assert Customer.objects.filter(erased_at__isnull=True).count() == len(pairs) + len(
        sample
    )

    raw = reapply_raw_seconds(journal)

    def naive() -> None:
        for entry in erasure_journal_read(naive_journal):
            assert isinstance(entry, JournalEntry)
            customer = Customer.objects.filter(
                pk=entry.customer, erased_at__isnull=True
            ).first()
            if customer is not None:
                customer_shred(actor=None, customer=customer, cause="restore")

    naive_per_line = _setup.time_once(naive) / REAPPLY_NAIVE_SAMPLE
    assert not Customer.objects.filter(
        pk__in=[c for c, _ in sample], erased_at__isnull=True
    ).exists()

    out = io.StringIO()
    ours = _setup.time_once(
        lambda: call_command(
            "reapply_erasures", journal=str(journal), verbosity=0, stdout=out
        )
    )
    assert f"Reapplied {lines} erasures;" in out.getvalue(), out.getvalue()
    assert not Customer.objects.filter(erased_at__isnull=True).exists()
    assert DataKey.objects.filter(destroyed_at__isnull=True).count() == 0

    goal = REAPPLY_GOAL_SECONDS * lines / REAPPLY_GOAL_LINES
    scaled = lines != REAPPLY_GOAL_LINES
    return Row(
        f"reapply_erasures {lines:,} lines (s)"
        + (f", journal scaled to the {count:,} loaded" if scaled else ""),
        ours,
        naive_per_line * lines,
        raw,
        goal=(
            f"≤{goal:.0f} s (60 s/100,000)" if scaled else f"≤{REAPPLY_GOAL_SECONDS} s"
        ),
        ok=ours <= goal,
        naive_label=f"shred x{REAPPLY_NAIVE_SAMPLE:,}, scaled",
        raw_label="SQL",
        fmt="{:.2f}",
    )


def bench_through_hsm(hsm: SoftHsm, admin: User) -> list[Row]:
    """5 and 6: move every data key into the HSM and rotate it there, then read a
    page through it. Leaves `pkcs11` in use."""
    page = hsm_page_before_rotation(admin)
    settings.AMANAH_PKCS11_LIBRARY = hsm.library
    settings.AMANAH_PKCS11_TOKEN = hsm.token
    settings.AMANAH_PKCS11_PIN = hsm.pin
    settings.AMANAH_PKCS11_KEY_LABEL = HSM_KEY_LABEL
    # AMANAH_MASTER_KEYS stays: the `env` versions are read beside the HSM's.
    provider_use("pkcs11")
    session = bare_session(hsm)
    try:
        into_hsm = bench_hsm_rotation(session, from_hsm=False)
        within_hsm = bench_hsm_rotation(session, from_hsm=True)
        page_row = bench_hsm_page(page, session)
    finally:
        session.close()
    return [into_hsm, within_hsm, page_row]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="amanah-bench-") as tmp:
        root = Path(tmp)
        hsm = softhsm_token(root)  # before anything loads the PKCS#11 library
        with _setup.bench_database(DB_NAME):
            print(_setup.machine_context())
            field_row = bench_field()

            # One start for both tables: the API comparison needs identical rows.
            first_created = timezone.now() - timedelta(days=365)
            load_ours = _setup.customers_load(
                CUSTOMERS, start=first_created, batch_size=LOAD_BATCH
            )
            load_plain = _setup.time_once(
                lambda: plain_tables_fill(CUSTOMERS, start=first_created)
            )
            _setup.vacuum_analyze(
                "customers_customer",
                "crypto_datakey",
                "access_accesslogentry",
                PLAIN_TABLE,
                PLAIN_LOG_TABLE,
            )
            print(
                f"data: {CUSTOMERS:,} customers with 6 PII fields, loaded in "
                f"{load_ours:.1f} s (customers_bulk_create); plaintext copy in "
                f"{load_plain:.1f} s (COPY)"
            )

            admin = User.objects.create(username="bench-admin", role=Role.PRIVACY_ADMIN)
            api_row = bench_api(admin)
            lookup_row = bench_lookup(CUSTOMERS)
            rotation_row = bench_rotation()
            rows = [field_row, api_row, rotation_row, lookup_row]
            if hsm is None:
                print(
                    f"No SoftHSM2 (softhsm2-util or {HSM_LIBRARY} is missing): the "
                    "rows through it are left out; `make setup` installs softhsm2."
                )
            else:
                rows += bench_through_hsm(hsm, admin)
            rows.append(bench_reapply(root, first_created))
            print()
            _setup.print_table(rows)


if __name__ == "__main__":
    main()
