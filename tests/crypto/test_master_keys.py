"""Master key versions in the database: the one in use, stale rings, epochs,
retirement, and a rotation's audit trail (the `env` provider; tests/crypto/test_hsm.py
does the same through an HSM)."""

import base64
import io
import logging
import os
import signal
from datetime import time as datetime_time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.crypto import services
from apps.crypto.errors import KeyRingError
from apps.crypto.masterkeys import (
    KEYS_LOCK,
    master_key_active_version,
    master_key_unreadable_on,
)
from apps.crypto.models import DataKey, MasterKey
from apps.crypto.services import (
    KeysBusy,
    data_keys_rotate,
    master_keys_epoch_advance,
    master_keys_retire,
)
from apps.customers.selectors import customer_get
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def actions() -> list[str]:
    return list(
        AuditEvent.objects.filter(action__startswith="keys.")
        .order_by("id")
        .values_list("action", flat=True)
    )


@pytest.fixture
def two_versions(settings):
    """v1 in use with three customers under it; v2 added to the ring, not yet used."""
    v1 = settings.AMANAH_MASTER_KEYS
    customers = [make_customer(email=f"k{i}@example.com") for i in range(3)]
    settings.AMANAH_MASTER_KEYS = f"2:{key()},{v1}"
    return customers


def test_a_new_version_in_the_ring_is_not_used_until_a_rotation_activates_it(
    two_versions,
):
    assert master_key_active_version() == 1
    new = make_customer()
    assert DataKey.objects.get(pk=new.data_key_id).kek_version == 1
    data_keys_rotate(actor=None)
    assert master_key_active_version() == 2
    assert DataKey.objects.get(pk=make_customer().data_key_id).kek_version == 2


def test_a_process_whose_ring_is_older_than_the_version_in_use_refuses_to_wrap(
    two_versions, settings
):
    v1_only = settings.AMANAH_MASTER_KEYS.split(",", 1)[1]
    data_keys_rotate(actor=None)  # another process, with v2, rotated
    settings.AMANAH_MASTER_KEYS = v1_only  # this process started before v2 existed
    with pytest.raises(KeyRingError, match="version 2 is in use but not in this"):
        make_customer()
    assert not DataKey.objects.filter(kek_version=1).exists()


def test_an_interrupted_rotation_is_audited_and_resumed(two_versions, monkeypatch):
    real, calls = services._rewrap_batch, {"n": 0}

    def crash_on_second_batch(**kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        return real(**kwargs)

    monkeypatch.setattr(services, "_rewrap_batch", crash_on_second_batch)
    with pytest.raises(RuntimeError):
        data_keys_rotate(actor=None, batch_size=2)
    interrupted = AuditEvent.objects.get(action="keys.rotation_interrupted")
    assert interrupted.details == {
        "to_version": 2,
        "rewrapped": 2,
        "cause": "RuntimeError",
    }

    monkeypatch.setattr(services, "_rewrap_batch", real)
    result = data_keys_rotate(actor=None, batch_size=2)
    assert (result.rewrapped, result.remaining, result.resumed) == (1, 0, True)
    assert actions() == [
        "keys.activated",
        "keys.rotation_started",
        "keys.rotation_interrupted",
        "keys.rotation_resumed",
        "keys.rotation_completed",
    ]


def test_a_rotation_killed_without_a_word_is_found_unfinished(two_versions):
    data_keys_rotate(actor=None)
    # A later run into v2 dies with the process (kill -9): started, never ended.
    MasterKey.objects.filter(version=2).update(rotation_started_at=timezone.now())
    data_keys_rotate(actor=None)
    assert actions()[-3:] == [
        "keys.rotation_interrupted",
        "keys.rotation_resumed",
        "keys.rotation_completed",
    ]
    found = AuditEvent.objects.filter(action="keys.rotation_interrupted").get()
    assert found.details["cause"] == "found unfinished"


def test_sigterm_stops_rotate_keys_as_an_audited_interruption(
    two_versions, monkeypatch
):
    real = services._rewrap_batch

    def terminated(**kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # the process manager stops us
        return real(**kwargs)

    monkeypatch.setattr(services, "_rewrap_batch", terminated)
    with pytest.raises(CommandError, match="Rotation interrupted \\(audited\\)"):
        call_command("rotate_keys", stdout=io.StringIO(), stderr=io.StringIO())
    assert AuditEvent.objects.filter(action="keys.rotation_interrupted").exists()
    assert signal.getsignal(signal.SIGTERM) is not None


@pytest.mark.django_db(transaction=True)
def test_one_rotation_at_a_time(two_versions, on_postgres):
    if not on_postgres:
        pytest.skip("PostgreSQL's advisory locks")
    from django.db import connections

    from apps.core.db import _lock_key

    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [_lock_key(KEYS_LOCK)])
        with pytest.raises(KeysBusy, match="Another rotation or retirement"):
            data_keys_rotate(actor=None)
        assert DataKey.objects.filter(kek_version=2).count() == 0
        with other.cursor() as cursor:  # that run ends
            cursor.execute("SELECT pg_advisory_unlock(%s)", [_lock_key(KEYS_LOCK)])
    finally:
        other.close()
    assert data_keys_rotate(actor=None).rewrapped == 3
    assert connection.vendor == "postgresql"


def test_the_epoch_rotates_into_a_newer_key_once_it_ends(two_versions):
    now = timezone.now()
    assert master_keys_epoch_advance(now=now).rotation is None  # epoch not over
    result = master_keys_epoch_advance(now=now + timedelta(days=31))
    assert result.rotation is not None
    assert (result.rotation.to_version, result.rotation.rewrapped) == (2, 3)


def test_an_ended_epoch_without_a_new_env_key_is_an_error(settings, caplog):
    make_customer()
    caplog.set_level(logging.ERROR)
    result = master_keys_epoch_advance(now=timezone.now() + timedelta(days=31))
    assert result.missing_key
    assert result.rotation is None
    assert AuditEvent.objects.filter(action="keys.epoch_key_missing").exists()
    assert "crypto.epoch_key_missing" in caplog.text


def test_create_master_key_prints_an_env_key_for_the_operator(settings):
    make_customer()
    out, err = io.StringIO(), io.StringIO()
    call_command("create_master_key", stdout=out, stderr=err)
    line = out.getvalue().strip()
    version, _, secret = line.partition(":")
    assert version == "2"
    assert len(base64.b64decode(secret)) == 32
    assert "add the line above in front of AMANAH_MASTER_KEYS" in err.getvalue()
    settings.AMANAH_MASTER_KEYS = f"{line},{settings.AMANAH_MASTER_KEYS}"
    assert data_keys_rotate(actor=None).to_version == 2


def test_retire_keys_waits_for_the_backups_then_names_the_env_key_to_remove(
    two_versions, settings
):
    data_keys_rotate(actor=None)
    settings.AMANAH_BACKUP_RETENTION_DAYS = 10
    assert [r.outcome for r in master_keys_retire(actor=None)] == []  # too recent

    later = timezone.now() + timedelta(days=11)
    out, err = io.StringIO(), io.StringIO()
    outcomes = master_keys_retire(actor=None, now=later)
    assert [(r.version, r.outcome) for r in outcomes] == [
        (1, "remove_from_configuration")
    ]
    assert MasterKey.objects.get(version=1).retired_at == later
    call_command("retire_keys", stdout=out, stderr=err)
    assert "v1 is retired but still in AMANAH_MASTER_KEYS" in err.getvalue()
    for i, customer in enumerate(two_versions):
        assert customer_get(customer_id=customer.pk).email == f"k{i}@example.com"


def test_retire_keys_refuses_while_keys_are_wrapped_under_the_version(
    two_versions, settings, monkeypatch
):
    real = services._rewrap_batch
    monkeypatch.setattr(
        services, "_rewrap_batch", lambda **kw: (_ for _ in ()).throw(OSError("HSM"))
    )
    with pytest.raises(OSError, match="HSM"):
        data_keys_rotate(actor=None)
    monkeypatch.setattr(services, "_rewrap_batch", real)
    settings.AMANAH_BACKUP_RETENTION_DAYS = 0
    with pytest.raises(
        CommandError,
        match="Master key v1 cannot be retired: 3 data keys are still wrapped under it",
    ):
        call_command("retire_keys", stdout=io.StringIO(), stderr=io.StringIO())
    assert MasterKey.objects.get(version=1).retired_at is None


def test_the_day_every_copy_becomes_unreadable(two_versions, settings):
    settings.AMANAH_KEY_EPOCH_DAYS = 30
    settings.AMANAH_BACKUP_RETENTION_DAYS = 35
    start = timezone.now() - timedelta(days=3)
    MasterKey.objects.filter(version=1).update(activated_at=start)
    # In use: its epoch ends on day 30, then the backups of 35 days expire. By the
    # day (TIME_ZONE): beat runs once a day, at whatever minute.
    when, retired = master_key_unreadable_on(version=1)
    assert not retired
    assert timezone.localdate(when) == timezone.localdate(start) + timedelta(days=65)
    assert timezone.localtime(when).time() == datetime_time.min
    # Superseded and emptied today: 35 days from today.
    result = data_keys_rotate(actor=None)
    row = MasterKey.objects.get(version=1)
    assert result.remaining == 0
    assert row.emptied_at is not None
    when, _ = master_key_unreadable_on(version=1)
    assert timezone.localdate(when) == timezone.localdate(row.emptied_at) + timedelta(
        days=35
    )


def test_retirement_goes_by_the_day_whatever_minute_beat_runs(two_versions, settings):
    """Emptied at 03:15:02 on day 0, beat's run at 03:15:00 on day 35 retires it: the
    date the certificate gave is kept."""
    settings.AMANAH_BACKUP_RETENTION_DAYS = 35
    data_keys_rotate(actor=None)
    emptied = timezone.localtime(MasterKey.objects.get(version=1).emptied_at)
    beat = emptied.replace(microsecond=0) + timedelta(days=35) - timedelta(seconds=2)
    if timezone.localdate(beat) != timezone.localdate(emptied) + timedelta(days=35):
        beat = emptied + timedelta(days=35)  # emptied in the first seconds of a day
    outcomes = master_keys_retire(actor=None, now=beat)
    assert [(r.version, r.outcome) for r in outcomes] == [
        (1, "remove_from_configuration")
    ]


def test_beats_task_runs_the_epoch_step_and_marks_its_rotation_scheduled(
    two_versions, settings
):
    from apps.crypto.tasks import master_keys_epoch_advance_task

    settings.AMANAH_KEY_EPOCH_DAYS = 0  # the epoch of v1 is over
    result = master_keys_epoch_advance_task.delay().get()
    assert result["rotated_into"] == 2
    assert result["rewrapped"] == 3
    started = AuditEvent.objects.get(action="keys.rotation_started")
    assert started.details["scheduled"] is True


@pytest.mark.django_db(transaction=True)
def test_customers_made_during_a_rotation_all_end_under_the_new_version(
    two_versions, on_postgres
):
    """Web processes keep making customers while the rotation runs: each key is
    wrapped under the version in use when it is made, and the rotation's later passes
    (or the next run) leave none under the old one; every customer reads back."""
    if not on_postgres:
        pytest.skip("concurrent connections")
    from django.db import connections

    from tests.concurrency import at_once

    def create_many():
        try:
            return [make_customer(email=f"during{i}@example.com").pk for i in range(30)]
        finally:
            connections.close_all()

    def rotate():
        try:
            return data_keys_rotate(actor=None, batch_size=5)
        finally:
            connections.close_all()

    made, rotation = at_once([create_many, rotate])
    assert not isinstance(made, Exception)
    assert not isinstance(rotation, Exception)
    if rotation.remaining:  # a key made under v1 after the last pass: the next run
        data_keys_rotate(actor=None)
    assert not DataKey.objects.filter(destroyed_at__isnull=True, kek_version=1).exists()
    for i, pk in enumerate(made):
        assert customer_get(customer_id=pk).email == f"during{i}@example.com"
