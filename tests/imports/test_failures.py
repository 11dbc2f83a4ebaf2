"""How the import behaves when something other than a row goes wrong: the database
(a lost connection, a deadlock), a worker process (hung, its parent killed), other
threads in the process, a key rotation mid-import, a damaged upload, a serializer
with checks of its own."""

import io
import os
import signal
import stat
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

import psycopg
import pytest
from django.db import OperationalError, connection
from rest_framework import serializers

from apps.access.api import CustomerInputSerializer
from apps.audit.models import AuditEvent
from apps.crypto.masterkeys import master_key_active_version
from apps.crypto.models import DataKey
from apps.crypto.services import data_keys_rotate
from apps.customers import services as customer_services
from apps.customers.models import Customer
from apps.imports import services
from apps.imports.models import ImportChunk, ImportJob, ImportStatus
from apps.imports.services import customers_import, import_job_create, import_job_run
from apps.imports.tasks import import_job_run_task
from tests.consent.factories import reseed_purposes
from tests.crypto.test_master_keys import key
from tests.imports.test_batches import _file


def _deadlock() -> OperationalError:
    exc = OperationalError("deadlock detected")
    exc.__cause__ = psycopg.errors.DeadlockDetected()
    return exc


def test_a_deadlocked_batch_is_written_again_as_a_batch(monkeypatch):
    insert = services.customers_insert_prepared
    calls = []

    def deadlock_once(*, prepared):
        calls.append(len(prepared.results))
        if len(calls) == 1:
            raise _deadlock()
        return insert(prepared=prepared)

    monkeypatch.setattr(services, "customers_insert_prepared", deadlock_once)
    result = customers_import(actor=None, file=_file(0, 3), batch_size=3)
    assert (result.imported, result.refused) == (3, 0)
    assert calls == [3, 3]  # the batch again, not row by row
    assert AuditEvent.objects.filter(action="customers.batch_imported").count() == 1


def test_a_batch_deadlocked_every_time_stops_the_import(monkeypatch):
    calls = []

    def deadlock(*, prepared):
        calls.append(len(prepared.results))
        raise _deadlock()

    monkeypatch.setattr(services, "customers_insert_prepared", deadlock)
    with pytest.raises(OperationalError):
        customers_import(actor=None, file=_file(0, 3), batch_size=3)
    assert calls == [3] * services.WRITE_ATTEMPTS == [3, 3, 3]
    assert not Customer.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_lost_connection_fails_the_job_instead_of_refusing_rows(
    privacy_admin, monkeypatch
):
    """The writer thread's own backend is terminated by the server mid-import (a
    real error, not a made-up one): the import raises, the job fails, no row is
    counted as refused."""
    reseed_purposes()
    insert = services.customers_insert_prepared
    calls = []

    def killed(*, prepared):
        calls.append(1)
        if len(calls) == 2:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return insert(prepared=prepared)

    monkeypatch.setattr(services, "customers_insert_prepared", killed)
    monkeypatch.setattr(services, "BATCH_SIZE", 2)
    monkeypatch.setattr(import_job_run_task, "delay", lambda *a: None)
    body = _file(0, 6).getvalue().encode()
    job = import_job_create(actor=privacy_admin, chunks=[body], size=len(body))
    import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert job.refused == 0
    assert job.imported == 2  # the first batch, committed before
    assert not ImportChunk.objects.filter(job=job).exists()


def _is_socket(fd: int) -> bool:
    return stat.S_ISSOCK(os.fstat(fd).st_mode)


@pytest.mark.django_db(transaction=True)
def test_a_worker_closes_the_database_sockets_it_inherited():
    connection.ensure_connection()
    fd = connection.connection.pgconn.socket
    assert _is_socket(fd)
    with ProcessPoolExecutor(
        1,
        mp_context=get_context("fork"),
        initializer=services._worker_init,
        initargs=(os.getpid(),),
    ) as pool:
        assert pool.submit(_is_socket, fd).result(timeout=30) is False
    # The parent's connection is untouched.
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)


def _worker_pid() -> int:
    return os.getpid()


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" in status.read()
    except FileNotFoundError:
        return True


def test_a_worker_dies_with_the_process_that_forked_it():
    read, write = os.pipe()
    parent = os.fork()
    if parent == 0:  # the import's process, killed below
        try:
            os.close(read)
            pool = ProcessPoolExecutor(
                1,
                mp_context=get_context("fork"),
                initializer=services._worker_init,
                initargs=(os.getpid(),),
            )
            os.write(write, str(pool.submit(_worker_pid).result(timeout=30)).encode())
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(write)
    worker = int(os.read(read, 32))
    os.close(read)
    os.kill(parent, signal.SIGKILL)
    os.waitpid(parent, 0)
    deadline = time.monotonic() + 10
    while not _gone(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(worker)


def _forking_allowed(monkeypatch) -> None:
    """As in a single-threaded importing process (the command's): under pytest-xdist
    its own thread runs beside the test, and the import would not fork at all."""
    monkeypatch.setattr(services, "_forkable", lambda: True)


def test_a_hung_worker_fails_the_import_in_time(monkeypatch):
    monkeypatch.setattr(services, "WORKER_TIMEOUT", 1)
    _forking_allowed(monkeypatch)
    here, prepare = os.getpid(), services.customers_prepare_bulk

    def hang_in_a_worker(**kwargs):
        if os.getpid() != here:
            time.sleep(30)
        return prepare(**kwargs)

    monkeypatch.setattr(services, "customers_prepare_bulk", hang_in_a_worker)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        customers_import(actor=None, file=_file(0, 6), batch_size=2, workers=1)
    assert time.monotonic() - started < 15


def test_no_fork_while_another_thread_runs(monkeypatch):
    """A fork copies the locks other threads hold: with one running, new customers
    are validated and sealed in this process."""

    def no_fork(*args, **kwargs):
        raise AssertionError("forked")

    monkeypatch.setattr(services, "ProcessPoolExecutor", no_fork)
    monkeypatch.setattr(services.os, "cpu_count", lambda: 8)
    done = threading.Event()
    other = threading.Thread(target=done.wait)
    other.start()
    try:
        assert services.import_workers() == 0
        result = customers_import(actor=None, file=_file(0, 6), batch_size=2, workers=1)
    finally:
        done.set()
        other.join()
    assert result.imported == 6


def test_a_rotation_during_an_import_wraps_the_next_batches_under_the_new_key(
    settings,
):
    assert master_key_active_version() == 1  # recorded as in use
    settings.AMANAH_MASTER_KEYS = f"2:{key()},{settings.AMANAH_MASTER_KEYS}"
    rotated = []

    def on_progress(result) -> None:
        if not rotated:
            rotated.append(data_keys_rotate(actor=None))

    result = customers_import(
        actor=None, file=_file(0, 6), batch_size=2, workers=0, on_progress=on_progress
    )
    assert result.imported == 6
    assert rotated[0].to_version == 2
    assert rotated[0].rewrapped == 2  # the first batch's
    versions = DataKey.objects.filter(
        pk__in=Customer.objects.values("data_key_id")
    ).values_list("kek_version", flat=True)
    assert set(versions) == {2}


def test_new_customers_are_inserted_in_the_order_of_their_email_index(monkeypatch):
    copied = []
    rows_copy = customer_services.rows_copy

    def spy(model, *, rows, **kwargs):
        if model is Customer:
            copied.append([row[-2] for row in rows])
        return rows_copy(model, rows=rows, **kwargs)

    monkeypatch.setattr(customer_services, "rows_copy", spy)
    customers_import(actor=None, file=_file(0, 20), batch_size=20)
    assert copied
    assert copied[0] == sorted(copied[0])
    assert len(copied[0]) == 20


def test_a_missing_part_of_the_upload_fails_the_job(privacy_admin, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_BYTES", 64)
    body = _file(0, 6).getvalue().encode()
    job = import_job_create(actor=privacy_admin, chunks=[body], size=len(body))
    ImportChunk.objects.filter(job=job, seq=2).delete()
    import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert "missing its part 2" in job.reason
    assert job.imported < 6


def test_an_upload_whose_key_is_gone_fails_the_job(privacy_admin, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_BYTES", 64)
    body = _file(0, 6).getvalue().encode()
    job = import_job_create(actor=privacy_admin, chunks=[body], size=len(body))
    monkeypatch.setattr(services, "open_with", lambda *args: None)
    import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert "cannot be opened" in job.reason
    assert ImportJob.objects.get(pk=job.pk).imported == 0


class _Checked(CustomerInputSerializer):
    def validate_full_name(self, value):
        return value


class _Whole(CustomerInputSerializer):
    def validate(self, attrs):
        return attrs


class _Defaulted(CustomerInputSerializer):
    region = serializers.CharField(max_length=6, required=False, default="JK")


class _Sourced(CustomerInputSerializer):
    city = serializers.CharField(max_length=100, required=False, source="region")


@pytest.mark.parametrize("serializer", [_Checked, _Whole, _Defaulted, _Sourced])
def test_the_fast_path_is_off_when_the_serializer_checks_more(serializer):
    assert services._Validator().plans is not None
    assert services._Validator(serializer).plans is None
    assert (
        services._Validator(serializer).fast({"country": "ID"}, partial=False) is None
    )


def test_the_stream_of_a_job_ends_only_at_its_size(privacy_admin):
    body = io.BytesIO(_file(0, 2).getvalue().encode()).getvalue()
    job = import_job_create(actor=privacy_admin, chunks=[body], size=len(body))
    reader = services._ChunkReader(job)
    assert reader.read() == body
    assert reader.read() == b""


def test_a_worker_that_dies_fails_the_import(monkeypatch):
    _forking_allowed(monkeypatch)
    here, prepare = os.getpid(), services.customers_prepare_bulk

    def die_in_a_worker(**kwargs):
        if os.getpid() != here:
            os._exit(1)  # killed, out of memory
        return prepare(**kwargs)

    monkeypatch.setattr(services, "customers_prepare_bulk", die_in_a_worker)
    with pytest.raises(BrokenProcessPool):
        customers_import(actor=None, file=_file(0, 6), batch_size=2, workers=1)


class _Broken(io.StringIO):
    """A file that cannot be read past its `size`-th character."""

    def __init__(self, text: str, size: int):
        super().__init__(text)
        self.size = size

    def __iter__(self):
        read = 0
        while line := self.readline():
            read += len(line)
            if read > self.size:
                raise OSError("the disk went away")
            yield line


@pytest.mark.django_db(transaction=True)
def test_an_error_while_a_batch_is_being_written_stops_the_writer(monkeypatch):
    """The reading thread fails while the writer thread writes a batch: the import
    raises, what was committed stays, nothing more is written, no thread is left."""
    reseed_purposes()
    insert = services.customers_insert_prepared
    writing = threading.Event()

    def slow(*, prepared):
        writing.set()
        time.sleep(0.3)
        return insert(prepared=prepared)

    monkeypatch.setattr(services, "customers_insert_prepared", slow)
    text = _file(0, 40).getvalue()
    with pytest.raises(OSError, match="disk"):
        customers_import(
            actor=None, file=_Broken(text, len(text) // 2), batch_size=4, workers=0
        )
    assert writing.is_set()
    written = Customer.objects.count()
    assert 0 < written < 40
    assert written % 4 == 0  # whole batches only
    assert not any(t.name == "customers-import-writer" for t in threading.enumerate())
    time.sleep(0.5)
    assert Customer.objects.count() == written
