"""Restore drills, as the README's restore procedure runs them: a real `pg_dump`, a
real `pg_restore` into a new database, and the application run on it as its own
processes (`manage.py`, gunicorn).

1. An erasure after the backup: the restored database still holds the canary, readable;
   `reapply_erasures` with the erasure journal shreds it again, so it reads as erased
   through the API and none of its values can be decrypted from SQL.
2. A backup from before an epoch whose master key was retired (destroyed in the HSM):
   nothing in it can be opened, not by the application and not by hand.
"""

import io
import os
import shutil
import socket
import subprocess  # nosec B404 - runs PostgreSQL's tools and our own manage.py
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.core.management import call_command
from django.db import connection
from psycopg import sql as pgsql

from apps.accounts.models import Role
from apps.accounts.services import token_issue
from apps.crypto.errors import KeyRingError
from apps.crypto.fields import EncryptedTextField
from apps.crypto.keys import unwrap_raw
from apps.crypto.models import DataKey
from apps.crypto.services import data_keys_rotate, master_key_create
from apps.customers.models import Customer
from apps.customers.selectors import customer_get
from apps.retention.services import customer_erase
from tests.accounts.factories import UserFactory
from tests.consent.factories import reseed_purposes
from tests.customers.factories import CANARY, make_canary, make_customer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
ENCRYPTED = [
    f for f in Customer._meta.concrete_fields if isinstance(f, EncryptedTextField)
]


@pytest.fixture(autouse=True)
def _postgres_tools():
    for tool in ("pg_dump", "pg_restore"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (PostgreSQL 15 client)")
    reseed_purposes()  # a transactional test may start after another one's flush


# PostgreSQL --------------------------------------------------------------------------


def _db() -> dict:
    return connection.settings_dict


def _pg_args() -> list[str]:
    db = _db()
    return [
        "-h",
        db["HOST"] or "127.0.0.1",
        "-p",
        str(db["PORT"] or 5432),
        "-U",
        db["USER"] or "postgres",
    ]


def _pg_env() -> dict[str, str]:
    env = dict(os.environ)
    if _db().get("PASSWORD"):
        env["PGPASSWORD"] = _db()["PASSWORD"]
    return env


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - fixed programs, our own databases
        argv, capture_output=True, check=True, timeout=300, **kwargs
    )


def pg_dump(path: Path) -> Path:
    """A custom-format dump of the test database (the backup)."""
    _run(
        [shutil.which("pg_dump"), "-Fc", *_pg_args(), "-f", str(path), _db()["NAME"]],
        env=_pg_env(),
    )
    return path


def _conninfo(name: str) -> str:
    db = _db()
    return psycopg.conninfo.make_conninfo(
        host=db["HOST"] or "127.0.0.1",
        port=str(db["PORT"] or 5432),
        user=db["USER"] or "postgres",
        password=db.get("PASSWORD") or None,
        dbname=name,
    )


def database_url(name: str) -> str:
    db = _db()
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return (
        f"postgres://{db['USER'] or 'postgres'}{password}@"
        f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{name}"
    )


@contextmanager
def restored(dump: Path) -> Iterator[str]:
    """A new database of this test's own holding `dump`, dropped afterwards."""
    name = f"amanah_restore_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_conninfo("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        _run(
            [
                shutil.which("pg_restore"),
                *_pg_args(),
                "--no-owner",
                "--exit-on-error",
                "-d",
                name,
                str(dump),
            ],
            env=_pg_env(),
        )
        yield name
    finally:
        with psycopg.connect(_conninfo("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sql(name: str, query: str | pgsql.Composed, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(_conninfo(name)) as conn:
        return conn.execute(query, params).fetchall()


def plain_dump(name: str) -> str:
    """Every row of the restored database as SQL text (nothing compressed)."""
    return _run(
        [shutil.which("pg_dump"), "--data-only", *_pg_args(), name],
        env=_pg_env(),
        text=True,
    ).stdout


# The application on the restored database --------------------------------------------


def app_env(name: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": database_url(name),
        **extra,
    }


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def web(env: dict[str, str], logs: Path) -> Iterator[str]:
    """The web process (gunicorn, as the Procfile runs it) on the restored database;
    its output goes to a file in `logs`, shown if it does not start."""
    port = _free_port()
    log = logs / f"web-{port}.log"
    with log.open("wb") as out:
        server = subprocess.Popen(  # noqa: S603 - our own application
            [
                str(Path(sys.executable).parent / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--timeout",
                "60",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/api/v1/", timeout=2)
                break
            except httpx.TransportError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        "the web process did not start:\n" + log.read_text()[-3000:],
                        pytrace=False,
                    )
                time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def read_customer(base: str, token: str, customer_id) -> httpx.Response:
    return httpx.get(
        f"{base}/api/v1/customers/{customer_id}/",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


# Opening values by hand, as someone holding the dump and the master keys would -------


def canary_ciphertexts(name: str, customer_id) -> dict[str, bytes]:
    query = pgsql.SQL("SELECT {} FROM {} WHERE id = %s").format(
        pgsql.SQL(", ").join(pgsql.Identifier(f.column) for f in ENCRYPTED),
        pgsql.Identifier(Customer._meta.db_table),
    )
    (row,) = sql(name, query, (customer_id,))
    return {
        f.name: bytes(value)
        for f, value in zip(ENCRYPTED, row, strict=True)
        if value is not None
    }


def aad(field: EncryptedTextField, customer_id) -> bytes:
    return field._aad_prefix + str(customer_id).encode()


def live_data_keys(name: str) -> dict[uuid.UUID, bytes]:
    """Every data key of the restored database that the key ring still opens."""
    opened = {}
    for pk, wrapped, version in sql(
        name,
        "SELECT id, wrapped_key, kek_version FROM crypto_datakey "
        "WHERE wrapped_key IS NOT NULL",
    ):
        opened[pk] = unwrap_raw(data_key_id=pk, wrapped=wrapped, kek_version=version)
    return opened


def decryptable(name: str, customer_id, sealed: dict[str, bytes]) -> dict[str, bytes]:
    """The canary's sealed values (`sealed`, by field) that some data key of the
    restored database opens."""
    by_name = {f.name: f for f in ENCRYPTED}
    found = {}
    keys = live_data_keys(name)
    for field_name, blob in sealed.items():
        for dek in keys.values():
            try:
                found[field_name] = AESGCM(dek).decrypt(
                    blob[1:13], blob[13:], aad(by_name[field_name], customer_id)
                )
            except InvalidTag:
                continue
    return found


def assert_no_canary(text: str, *, where: str) -> None:
    for key, value in CANARY.items():
        # pytest.fail, not assert: the report would print the text around the value.
        if value in text or value.lower() in text.lower():
            pytest.fail(f"canary {key} in {where}", pytrace=False)


# Drill 1 -----------------------------------------------------------------------------


def test_an_erasure_after_the_backup_is_reapplied_from_the_journal(settings, tmp_path):
    settings.AMANAH_ERASURE_JOURNAL = str(tmp_path / "erasure-journal.jsonl")
    admin = UserFactory(username="drill-admin", role=Role.PRIVACY_ADMIN)
    token = token_issue(user=admin).key
    canary = make_canary()
    bystander = make_customer(email="bystander@example.com")
    dump = pg_dump(tmp_path / "before-erasure.dump")

    customer_erase(actor=admin, customer=canary)
    journal = Path(settings.AMANAH_ERASURE_JOURNAL)
    assert str(canary.pk) in journal.read_text()  # appended after the commit
    assert_no_canary(journal.read_text(), where="the erasure journal")

    journaled = journal.read_text()
    with restored(dump) as name:
        # As the README's procedure runs it: the journal reapplied is the one the
        # processes are configured with (reapplying adds nothing to it).
        env = app_env(name, AMANAH_ERASURE_JOURNAL=str(journal))
        # The backup holds the canary, readable: the drill starts from a real leak.
        (key_row,) = sql(
            name,
            "SELECT wrapped_key, kek_version FROM crypto_datakey WHERE id = %s",
            (canary.data_key_id,),
        )
        assert key_row[0] is not None
        sealed = canary_ciphertexts(name, canary.pk)
        assert set(sealed) >= {"email", "national_id", "full_name", "phone"}
        opened = decryptable(name, canary.pk, sealed)
        assert opened["email"] == CANARY["email"].encode()
        assert opened["national_id"] == CANARY["national_id"].encode()
        with web(env, tmp_path) as base:
            before = read_customer(base, token, canary.pk)
            assert before.status_code == 200, before.text
            assert before.json()["erased"] is False

            done = manage(env, "reapply_erasures", "--journal", str(journal))
            assert done.returncode == 0, done.stderr
            assert "Reapplied 1 erasure;" in done.stdout

            after = read_customer(base, token, canary.pk)
            assert after.status_code == 200, after.text
            body = after.json()
            assert body["erased"] is True
            shown = [f.name for f in ENCRYPTED if f.name in body]
            assert {"email", "full_name", "phone"} <= set(shown)
            assert {name: body[name] for name in shown} == dict.fromkeys(
                shown, "[erased]"
            )
            assert_no_canary(after.text, where="the API's answer")
            # The bystander, in the same backup and never erased, still reads.
            other = read_customer(base, token, bystander.pk)
            assert other.status_code == 200, other.text
            assert other.json()["erased"] is False

        # From SQL: the key row is empty, and no live key opens any canary value.
        (key_row,) = sql(
            name,
            "SELECT wrapped_key, destroyed_at FROM crypto_datakey WHERE id = %s",
            (canary.data_key_id,),
        )
        assert key_row[0] is None
        assert key_row[1] is not None
        assert live_data_keys(name)  # the bystander's key opens...
        # ...nothing of the canary's: neither what the row holds now, nor the values
        # the backup held (copied before the reapply, as someone with the dump could).
        assert decryptable(name, canary.pk, canary_ciphertexts(name, canary.pk)) == {}
        assert decryptable(name, canary.pk, sealed) == {}
        assert_no_canary(plain_dump(name), where="the restored database")

        # Idempotent: a second run finds it done.
        again = manage(env, "reapply_erasures", "--journal", str(journal))
        assert again.returncode == 0, again.stderr
        assert "Reapplied 0 erasures; 1 line already applied" in again.stdout
        assert journal.read_text() == journaled


# Drill 2 -----------------------------------------------------------------------------


def test_a_backup_from_before_a_retired_epoch_cannot_be_opened(hsm, settings, tmp_path):
    master_key_create(actor=None)
    admin = UserFactory(username="drill-admin", role=Role.PRIVACY_ADMIN)
    token = token_issue(user=admin).key
    canary = make_canary()
    others = [make_customer() for _ in range(3)]
    assert set(DataKey.objects.values_list("kek_version", flat=True)) == {1}
    dump = pg_dump(tmp_path / "epoch-1.dump")

    master_key_create(actor=None)
    assert data_keys_rotate(actor=None).remaining == 0
    settings.AMANAH_BACKUP_RETENTION_DAYS = 0
    out = io.StringIO()
    call_command("retire_keys", stdout=out, stderr=io.StringIO())
    assert "Master key v1: destroyed in the HSM." in out.getvalue()
    # The live database goes on, under v2.
    assert customer_get(customer_id=canary.pk).email == CANARY["email"]

    with restored(dump) as name:
        rows = sql(name, "SELECT id, wrapped_key, kek_version FROM crypto_datakey")
        assert len(rows) == 1 + len(others)
        assert {version for _, _, version in rows} == {1}
        for pk, wrapped, version in rows:
            assert wrapped is not None  # the backup holds every wrapped key...
            with pytest.raises(  # ...and none opens
                KeyRingError, match="Master key version 1 is not in the key ring"
            ):
                unwrap_raw(data_key_id=pk, wrapped=wrapped, kek_version=version)

        env = app_env(
            name,
            **hsm.settings(settings.AMANAH_PKCS11_KEY_LABEL),
            AMANAH_MASTER_KEYS="",
        )
        with web(env, tmp_path) as base:
            answer = read_customer(base, token, canary.pk)
        assert answer.status_code == 500, answer.text
        body = answer.json()
        assert body["code"] == "key_ring"
        assert "Master key version 1 is not in the key ring" in body["detail"]
        assert_no_canary(answer.text, where="the API's answer")
