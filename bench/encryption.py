"""What field encryption costs: our path beside the naive way and the raw limit.

1. One field sealed and opened through EncryptedTextField, vs Fernet, vs bare AES-GCM.
2. The customer list API as a privacy admin, 1,000 rows of masked PII with the access
   policy and the access log, vs the same API, policy and log over plaintext columns,
   vs a plain SQL SELECT of those rows.
3. `data_keys_rotate` over every customer's data key vs a bare in-memory rewrap.
4. Lookup by email through the blind index vs an indexed plaintext column vs plain SQL.

`BENCH_CUSTOMERS=10000` gives a quick, smaller run; the goals are set for 100,000.
"""
# ruff: noqa: E402 - Django must be configured before the models are imported.

import base64
import itertools
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import _setup
from _setup import Row

DB_NAME = _setup.configure_django()

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.db import connection, models
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
from apps.crypto.keys import data_key_new, key_scope
from apps.crypto.models import DataKey
from apps.crypto.services import data_keys_rotate
from apps.customers.models import Customer

CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "100000"))
FIELD_LOOPS = 20_000
PAGE_SIZE = 1_000
API_RUNS = 15
LOOKUPS = 2_000
LOOKUP_WARMUP = 200
LOAD_BATCH = 5_000
ROTATE_BATCH = 5_000  # the default of `manage.py rotate_keys`

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


def main() -> None:
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
        print()
        _setup.print_table([field_row, api_row, rotation_row, lookup_row])


if __name__ == "__main__":
    main()
