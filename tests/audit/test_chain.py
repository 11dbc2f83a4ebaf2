import json
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, close_old_connections, connection, transaction

from apps.audit import services as audit
from apps.audit.chain import event_hash
from apps.audit.errors import AuditError
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_chain_verify, audit_checkpoint_get

pytestmark = pytest.mark.django_db


def _append(n: int, actor=None) -> list[AuditEvent]:
    return [
        audit.record(actor=actor, action="test.happened", details={"n": i})
        for i in range(n)
    ]


def _tamper(sql: str, params=()) -> None:
    """Change the trail as a database administrator could: with the trigger off."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # triggers off
        cursor.execute(sql, params)
        cursor.execute("SET session_replication_role = DEFAULT")


def test_record_links_each_event_to_the_one_before(privacy_admin):
    first, second = _append(2, actor=privacy_admin)
    assert (first.seq, second.seq) == (1, 2)
    assert second.prev_hash == first.hash
    assert first.actor_role == "privacy_admin"
    report = audit_chain_verify()
    assert report.ok
    assert report.count == 2
    assert report.head_hash == second.hash


def test_record_names_the_target_by_type_and_public_id(privacy_admin, support_agent):
    event = audit.record(actor=privacy_admin, action="user.reset", target=support_agent)
    assert event.target_type == "accounts.user"
    assert event.target_id == str(support_agent.pk)


@pytest.mark.parametrize(
    "details",
    [{"email": "x"}, {"note": "write to jane@example.com"}, {"nested": {"phone": "1"}}],
)
def test_record_refuses_pii_in_details_and_writes_nothing(details):
    with pytest.raises(AuditError, match="may not carry"):
        audit.record(actor=None, action="test.pii", details=details)
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("details", "message"),
    [
        # jsonb reads 1e16 back as 10000000000000000 and -0.0 as 0.0: the row would
        # no longer match its hash (found by tests/security/test_properties.py).
        ({"ratio": 1e16}, "whole numbers"),
        ({"ratio": -0.0}, "whole numbers"),
        ({"reason": "a\x00b"}, "NUL"),  # jsonb cannot hold it: was a DataError
        ({1: "one"}, "keys must be text"),
    ],
)
def test_record_refuses_details_the_database_would_not_store_as_given(details, message):
    with pytest.raises(AuditError, match=message):
        audit.record(actor=None, action="test.refused", details=details)
    assert not AuditEvent.objects.exists()


def test_record_commits_and_rolls_back_with_the_caller():
    def fail_after_recording() -> None:
        with transaction.atomic():
            audit.record(actor=None, action="test.rolled_back")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        fail_after_recording()
    assert not AuditEvent.objects.exists()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_auditevent SET action = 'x'", "DELETE FROM audit_auditevent"],
)
def test_database_refuses_update_and_delete(statement):
    _append(1)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert AuditEvent.objects.filter(action="test.happened").count() == 1


@pytest.mark.postgres
def test_verify_detects_an_edited_row():
    events = _append(5)
    _tamper(
        "UPDATE audit_auditevent SET details = '{\"n\": 99}' WHERE id = %s",
        [events[2].pk],
    )
    report = audit_chain_verify()
    assert not report.ok
    assert report.bad_seq == 3
    assert "edited" in report.reason


@pytest.mark.postgres
def test_verify_detects_a_deleted_row():
    events = _append(5)
    _tamper("DELETE FROM audit_auditevent WHERE id = %s", [events[1].pk])
    report = audit_chain_verify()
    assert not report.ok
    assert report.bad_seq == 3
    assert "deleted" in report.reason


@pytest.mark.postgres
def test_verify_detects_reordered_rows():
    events = _append(5)
    a, b = events[1], events[3]
    _tamper("UPDATE audit_auditevent SET seq = 1000000 WHERE id = %s", [a.pk])
    _tamper("UPDATE audit_auditevent SET seq = %s WHERE id = %s", [a.seq, b.pk])
    _tamper("UPDATE audit_auditevent SET seq = %s WHERE id = %s", [b.seq, a.pk])
    report = audit_chain_verify()
    assert not report.ok
    assert report.bad_seq == 2


@pytest.mark.postgres
def test_verify_detects_rows_deleted_from_the_start():
    _append(4)
    _tamper("DELETE FROM audit_auditevent WHERE seq <= 2")
    report = audit_chain_verify()
    assert not report.ok
    assert report.bad_seq == 3
    assert "expected sequence #1: a row before it was deleted" in report.reason


@pytest.mark.postgres
def test_verify_detects_a_cut_tail_against_the_chain_head_and_a_checkpoint():
    events = _append(5)
    checkpoint = audit_checkpoint_get()
    _tamper(
        "DELETE FROM audit_auditevent WHERE id IN (%s, %s)",
        [events[3].pk, events[4].pk],
    )
    report = audit_chain_verify()
    assert not report.ok
    assert report.reason == (
        "the chain ends at #3 but once reached #5: rows were cut from its tail"
    )
    report = audit_chain_verify(checkpoint=checkpoint)
    assert not report.ok
    assert "cut from its tail" in report.reason


@pytest.mark.postgres
def test_verify_detects_a_tail_rewritten_behind_the_triggers_back():
    _append(3)
    last = AuditEvent.objects.get(seq=3)
    last.details = {"n": 99}
    forged = event_hash(last)
    _tamper(
        "UPDATE audit_auditevent SET details = '{\"n\": 99}', hash = %s WHERE seq = 3",
        [forged],
    )
    report = audit_chain_verify()
    assert not report.ok
    assert report.bad_seq == 3
    assert "differs from the chain head" in report.reason


@pytest.mark.postgres
def test_verify_command_fails_on_a_trail_emptied_behind_the_triggers_back():
    _append(3)
    _tamper("DELETE FROM audit_auditevent")
    with pytest.raises(
        CommandError,
        match=r"^Audit chain broken: no events remain but the chain once reached #3: "
        r"the trail was emptied$",
    ):
        call_command("verify_audit_chain")


@pytest.mark.postgres
def test_verify_command_fails_on_an_emptied_trail_naming_the_checkpoints_event(
    tmp_path,
):
    _append(3)
    path = tmp_path / "head.json"
    call_command("audit_checkpoint", output=path)
    _tamper("DELETE FROM audit_auditevent")
    with pytest.raises(
        CommandError,
        match=r"^Audit chain broken: the checkpoint's event #3 is missing: "
        r"no events remain \(the trail was emptied\)$",
    ):
        call_command("verify_audit_chain", checkpoint=path)


def test_verify_command_on_a_fresh_trail_is_intact_with_0_events(capsys):
    def roll_back_one_event() -> None:
        with transaction.atomic():
            audit.record(actor=None, action="test.rolled_back")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        roll_back_one_event()  # a write that never committed leaves no trace
    call_command("verify_audit_chain")
    assert capsys.readouterr().out == "Audit chain intact: 0 events, head #0.\n"


@pytest.mark.postgres
def test_verify_detects_a_rewritten_chain_against_a_checkpoint():
    _append(3)
    checkpoint = audit_checkpoint_get()
    _tamper("DELETE FROM audit_auditevent")
    _append(4)
    report = audit_chain_verify(checkpoint=checkpoint)
    assert not report.ok
    assert "differs from the checkpoint" in report.reason


def test_commands_verify_and_checkpoint(tmp_path, capsys, settings):
    _append(3)
    path = tmp_path / "head.json"
    call_command("audit_checkpoint", output=path)
    assert json.loads(path.read_text())["seq"] == 3
    assert "signature" in json.loads(path.read_text())

    call_command("verify_audit_chain", checkpoint=path)
    assert "intact: 3 events" in capsys.readouterr().out

    # Without --output: a new file in AMANAH_AUDIT_CHECKPOINT_DIR, its path printed.
    settings.AMANAH_AUDIT_CHECKPOINT_DIR = str(tmp_path / "checkpoints")
    call_command("audit_checkpoint")
    written = Path(capsys.readouterr().out.strip())
    assert written.parent == tmp_path / "checkpoints"
    assert json.loads(written.read_text())["count"] == 3


@pytest.mark.postgres
def test_verify_command_exits_1_naming_the_first_bad_row():
    events = _append(3)
    _tamper(
        "UPDATE audit_auditevent SET action = 'forged' WHERE id = %s", [events[1].pk]
    )
    with pytest.raises(CommandError, match=r"broken at row #2"):
        call_command("verify_audit_chain")


def test_verify_command_rejects_a_bad_checkpoint_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    with pytest.raises(CommandError, match="not a checkpoint"):
        call_command("verify_audit_chain", checkpoint=bad)
    with pytest.raises(CommandError, match="not found"):
        call_command("verify_audit_chain", checkpoint=tmp_path / "missing.json")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_writers_leave_a_valid_chain():
    writers, per_writer = 20, 10
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_writer):
                with transaction.atomic():
                    audit.record(
                        actor=None, action="test.concurrent", details={"w": n, "i": i}
                    )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    report = audit_chain_verify()
    assert report.ok, report.summary
    assert report.count == writers * per_writer
