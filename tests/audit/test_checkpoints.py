"""Signed checkpoints on a schedule, and the record of every chain check."""

import base64
import json

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit import services as audit
from apps.audit.checks import check_checkpoint_dir
from apps.audit.models import AuditCheckpoint, ChainVerification
from apps.audit.selectors import audit_checkpoint_last, audit_verification_last
from apps.audit.tasks import audit_chain_verify_task, audit_checkpoint_write_task
from apps.crypto.signing import jwks

pytestmark = pytest.mark.django_db


@pytest.fixture
def checkpoint_dir(settings, tmp_path):
    directory = tmp_path / "checkpoints"
    settings.AMANAH_AUDIT_CHECKPOINT_DIR = str(directory)
    return directory


def _append(n: int) -> None:
    for i in range(n):
        audit.record(actor=None, action="test.happened", details={"n": i})


def test_beat_writes_a_signed_checkpoint_every_hour_to_the_directory(checkpoint_dir):
    entry = next(
        e
        for e in django_settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "audit.write_checkpoint"
    )
    assert str(entry["schedule"]).startswith("<crontab: 7 * * * *")
    _append(4)
    path = audit_checkpoint_write_task.delay().get()
    (written,) = checkpoint_dir.iterdir()
    assert str(written) == path
    assert written.name.startswith("checkpoint-000000000004-")
    document = json.loads(written.read_text())
    assert document["type"] == "amanah.audit_checkpoint"
    assert (document["seq"], document["count"]) == (4, 4)
    assert document["signature"]["kid"] == jwks()["keys"][0]["kid"]
    # No temporary file left behind.
    assert [p.name for p in checkpoint_dir.iterdir()] == [written.name]

    row = audit_checkpoint_last()
    assert (row.seq, row.hash, row.path) == (4, document["hash"], path)
    assert row.taken_at.isoformat() == document["taken_at"]

    call_command("verify_audit_chain", checkpoint=written)
    last = audit_verification_last()
    assert (last.ok, last.count, last.reason) == (True, 4, "")
    assert last.checkpoint == str(written)


def test_a_later_checkpoint_is_the_last_and_gets_its_own_file(checkpoint_dir):
    _append(1)
    first = audit.audit_checkpoint_write()
    _append(1)
    second = audit.audit_checkpoint_write()
    assert audit_checkpoint_last() == second
    assert first.path != second.path
    assert len(list(checkpoint_dir.iterdir())) == 2


def test_none_before_any_checkpoint_or_check():
    assert audit_checkpoint_last() is None
    assert audit_verification_last() is None


def test_the_nightly_check_is_recorded_broken_or_not():
    _append(2)
    assert audit_chain_verify_task.delay().get() is True
    row = audit_verification_last()
    assert (row.ok, row.count, row.head_seq, row.source) == (True, 2, 2, "task")


@pytest.mark.postgres
def test_a_broken_chain_is_recorded_with_its_reason():
    from django.db import connection

    _append(3)
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute("UPDATE audit_auditevent SET action = 'forged' WHERE seq = 2")
        cursor.execute("SET session_replication_role = DEFAULT")
    with pytest.raises(CommandError, match="broken at row #2"):
        call_command("verify_audit_chain")
    row = audit_verification_last()
    assert not row.ok
    assert row.source == "command"
    assert row.reason == "its content does not match its hash (edited)"
    assert ChainVerification.objects.count() == 1


def _written(tmp_path) -> tuple:
    _append(2)
    path = tmp_path / "head.json"
    call_command("audit_checkpoint", output=path)
    return path, json.loads(path.read_text())


def test_an_unsigned_checkpoint_is_refused(tmp_path):
    path, document = _written(tmp_path)
    del document["signature"]
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError, match=r"^The checkpoint is not signed"):
        call_command("verify_audit_chain", checkpoint=path)
    assert audit_verification_last() is None  # the chain was not checked


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(seq=1), "signature does not match its content"),
        (
            lambda d: d["signature"].update(
                value=("A" if d["signature"]["value"][0] != "A" else "B")
                + d["signature"]["value"][1:]
            ),
            "signature does not match its content",
        ),
        (lambda d: d.update(type="amanah.consent_receipt"), "not an audit checkpoint"),
    ],
    ids=["content", "signature", "type"],
)
def test_a_tampered_checkpoint_fails_before_the_chain_is_walked(
    tmp_path, change, message
):
    path, document = _written(tmp_path)
    change(document)
    path.write_text(json.dumps(document))
    with pytest.raises(CommandError, match=message):
        call_command("verify_audit_chain", checkpoint=path)
    assert audit_verification_last() is None


def test_a_checkpoint_signed_by_another_key_is_refused(tmp_path, settings):
    path, _ = _written(tmp_path)
    settings.AMANAH_SIGNING_KEY = base64.b64encode(b"\x01" * 32).decode()
    with pytest.raises(CommandError, match="signed by an unknown key"):
        call_command("verify_audit_chain", checkpoint=path)


def test_the_command_names_a_file_it_cannot_write(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(CommandError, match="Cannot write"):
        call_command("audit_checkpoint", output=blocker / "head.json")
    assert not AuditCheckpoint.objects.exists()


def test_the_deploy_check_wants_an_absolute_writable_directory(settings, tmp_path):
    settings.AMANAH_AUDIT_CHECKPOINT_DIR = ""
    assert [e.id for e in check_checkpoint_dir(None)] == ["audit.E001"]
    settings.AMANAH_AUDIT_CHECKPOINT_DIR = "relative/dir"
    assert [e.id for e in check_checkpoint_dir(None)] == ["audit.E002"]
    settings.AMANAH_AUDIT_CHECKPOINT_DIR = str(tmp_path / "not-mounted")
    assert [e.id for e in check_checkpoint_dir(None)] == ["audit.E003"]
    settings.AMANAH_AUDIT_CHECKPOINT_DIR = str(tmp_path)
    assert check_checkpoint_dir(None) == []
