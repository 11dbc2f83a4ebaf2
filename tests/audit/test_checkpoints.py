"""Signed checkpoints on a schedule, and the record of every chain check."""

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from apps.audit import services as audit
from apps.audit.checks import check_checkpoint_dir
from apps.audit.models import AuditCheckpoint, AuditEvent, ChainVerification
from apps.audit.selectors import audit_checkpoint_last, audit_verification_last
from apps.audit.tasks import audit_chain_verify_task, audit_checkpoint_write_task
from apps.crypto.signing import jwks
from tests.accounts.helpers import sign_in

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


# An auditor's check against a saved copy of the published keys -------------------


def test_an_auditor_checks_a_checkpoint_with_a_saved_copy_of_the_keys(
    tmp_path, settings
):
    path, _ = _written(tmp_path)
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(jwks()))
    settings.AMANAH_SIGNING_KEY = ""  # the auditor holds no private key
    call_command("verify_audit_chain", checkpoint=path, keys=keys)
    assert audit_verification_last().ok is True
    other = tmp_path / "other.json"
    settings.AMANAH_SIGNING_KEY = base64.b64encode(b"\x01" * 32).decode()
    other.write_text(json.dumps(jwks()))
    with pytest.raises(CommandError, match=r"unknown key \(kid .*\), not in the key"):
        call_command("verify_audit_chain", checkpoint=path, keys=other)
    (tmp_path / "bad.json").write_text("[" * 100000)
    with pytest.raises(CommandError, match="Key file is not a JWKS"):
        call_command("verify_audit_chain", checkpoint=path, keys=tmp_path / "bad.json")
    with pytest.raises(CommandError, match="give --checkpoint too"):
        call_command("verify_audit_chain", keys=keys)


def test_a_checkpoint_signed_before_the_key_was_replaced_verifies_when_retired(
    tmp_path, settings
):
    path, _ = _written(tmp_path)
    old = jwks()["keys"][0]
    old_raw = base64.b64encode(
        base64.urlsafe_b64decode(old["x"] + "=" * (-len(old["x"]) % 4))
    ).decode()
    settings.AMANAH_SIGNING_KEY = base64.b64encode(b"\x01" * 32).decode()
    settings.AMANAH_SIGNING_PUBLIC_KEYS_RETIRED = old_raw
    assert old["kid"] in [key["kid"] for key in jwks()["keys"]]
    call_command("verify_audit_chain", checkpoint=path)
    assert audit_verification_last().ok is True


def _verify_out(**options) -> str:
    out = io.StringIO()
    call_command("verify_audit_chain", stdout=out, **options)
    return out.getvalue()


def test_the_command_says_the_checkpoints_signature_was_checked(tmp_path):
    path, document = _written(tmp_path)
    kid = document["signature"]["kid"]
    intact = r"audit chain intact: \d+ events, head #\d+\.\n"
    out = _verify_out(checkpoint=path)
    assert re.fullmatch(rf"Checkpoint signature valid \(key {kid}\); {intact}", out)
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps(jwks()))
    out = _verify_out(checkpoint=path, keys=keys)
    assert out.startswith(f"Checkpoint signature valid (key {kid} from {keys}); ")
    assert re.fullmatch(r"Audit chain intact: \d+ events, head #\d+\.\n", _verify_out())


def _manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - this interpreter, our own arguments
        [sys.executable, "manage.py", *args],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_run_from_the_shell_fails_in_one_plain_line(tmp_path):
    """Exit 1 with the reason alone on stderr, not Django's `CommandError: ...`
    (checked before the chain is walked, so no database is needed)."""
    path, document = _written(tmp_path)
    del document["signature"]
    path.write_text(json.dumps(document))
    done = _manage("verify_audit_chain", "--checkpoint", str(path))
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        "The checkpoint is not signed: only a checkpoint signed by this "
        "installation's key is trusted (write one with audit_checkpoint).\n"
    )
    done = _manage("verify_audit_chain", "--keys", str(path))
    assert (done.returncode, done.stderr) == (
        1,
        "--keys checks a checkpoint: give --checkpoint too.\n",
    )


# "Verify now" on the audit page ---------------------------------------------------


def test_the_verify_page_shows_the_last_check_and_runs_none_on_get(
    client, compliance_officer
):
    sign_in(client, compliance_officer)
    page = client.get(reverse("audit:verify"))
    assert page.status_code == 200
    assert "has not been verified yet" in page.content.decode()
    assert 'method="post"' in page.content.decode()
    assert not ChainVerification.objects.exists()


def test_the_verify_page_says_where_hourly_checkpoints_go(client, compliance_officer):
    sign_in(client, compliance_officer)
    text = " ".join(client.get(reverse("audit:verify")).content.decode().split())
    assert (
        "Beat writes a signed checkpoint every hour to "
        "<code>AMANAH_AUDIT_CHECKPOINT_DIR</code>" in text
    )
    assert "(<code>manage.py audit_checkpoint</code> writes one there now)" in text
    assert "--output" not in text


@pytest.mark.django_db(transaction=True)
def test_verify_now_walks_nothing_while_another_check_runs(
    client, compliance_officer, monkeypatch
):
    from django.db import connection, connections

    from apps.audit import views
    from apps.core.db import _lock_key

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL's advisory locks")

    def walked(*args, **kwargs):
        raise AssertionError("the chain was walked")

    sign_in(client, compliance_officer)
    other = connections.create_connection("default")
    key = _lock_key(views.CHAIN_CHECK_LOCK)
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [key])
        with monkeypatch.context() as patch:
            patch.setattr(views, "audit_chain_verify", walked)
            page = client.post(reverse("audit:verify"))
        assert page.status_code == 409
        assert "A check is already running; try again in a moment." in (
            page.content.decode()
        )
        assert not ChainVerification.objects.exists()
        with other.cursor() as cursor:  # that check ends
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
    finally:
        other.close()
    page = client.post(reverse("audit:verify"))
    assert page.status_code == 200
    assert "Audit chain intact" in page.content.decode()
    assert ChainVerification.objects.count() == 1


def test_verify_now_records_the_check_for_the_cockpit(client, compliance_officer):
    _append(3)
    sign_in(client, compliance_officer)
    page = client.post(reverse("audit:verify"))
    assert page.status_code == 200
    assert "Audit chain intact" in page.content.decode()
    last = audit_verification_last()
    assert (last.ok, last.source) == (True, ChainVerification.Source.PAGE)
    assert last.count == AuditEvent.objects.count()
    text = client.get(reverse("audit:verify")).content.decode()
    assert "Verify now (audit page)" in text
    assert "intact" in text


def test_verify_now_is_for_governance_roles_and_needs_its_csrf_token(
    client, support_agent, compliance_officer
):
    sign_in(client, support_agent)
    assert client.post(reverse("audit:verify")).status_code == 403
    guarded = Client(enforce_csrf_checks=True)
    sign_in(guarded, compliance_officer)
    assert guarded.post(reverse("audit:verify")).status_code == 403
    assert not ChainVerification.objects.exists()
