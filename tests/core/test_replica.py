"""The read replica's routing (apps/core/replica.py), on the test database's mirror
(config/settings/test.py): a second connection to the same database, so a test's data
must be committed for it to be seen there (transactional tests)."""

import logging
import socket
import time

import pytest
from django.conf import settings
from django.db import (
    DEFAULT_DB_ALIAS,
    OperationalError,
    connections,
    router,
    transaction,
)
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.consent.models import Purpose
from apps.core import replica
from apps.core.replica import (
    PIN_KEY,
    REPLICA,
    read_connection,
    replica_lag_seconds,
    replica_reads,
    replica_stream,
)
from tests.accounts.helpers import sign_in
from tests.consent.factories import reseed_purposes

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA]),
]


@pytest.fixture(autouse=True)
def _fresh_answers():
    """Each test asks the replica afresh, and leaves no answer to the next; the
    purposes are there (a transactional test may start after another one's flush)."""
    reseed_purposes()
    replica.replica_checks_forget()
    yield
    replica.replica_checks_forget()


def closed_port() -> int:
    """A local port nothing listens on: connecting to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def replica_down():
    """The replica alias pointed at a closed port (a real refused connection)."""
    conn = connections[REPLICA]
    conn.close()
    saved = conn.settings_dict["HOST"], conn.settings_dict["PORT"]
    conn.settings_dict["HOST"], conn.settings_dict["PORT"] = "127.0.0.1", closed_port()
    yield
    conn.close()
    conn.settings_dict["HOST"], conn.settings_dict["PORT"] = saved


def test_outside_a_block_reads_go_to_the_primary():
    assert Purpose.objects.all().db == DEFAULT_DB_ALIAS
    assert read_connection().alias == DEFAULT_DB_ALIAS


def test_inside_a_block_reads_go_to_the_replica():
    with replica_reads() as alias:
        assert alias == REPLICA
        assert Purpose.objects.all().db == REPLICA
        assert read_connection().alias == REPLICA
        with (
            CaptureQueriesContext(connections[REPLICA]) as on_replica,
            CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_primary,
        ):
            count = Purpose.objects.count()
    assert count > 0  # the mirror sees the primary's committed rows
    assert [q for q in on_replica if "consent_purpose" in q["sql"]]
    assert not on_primary.captured_queries
    assert Purpose.objects.all().db == DEFAULT_DB_ALIAS  # and after it, the primary


def test_writes_inside_a_block_go_to_the_primary():
    with replica_reads():
        assert router.db_for_write(Purpose) == DEFAULT_DB_ALIAS
        with CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_primary:
            purpose = Purpose.objects.create(
                code="replica_test", name="Replica test", description="-"
            )
        # Read back inside the block: a row read from the replica saves on the primary.
        again = Purpose.objects.get(pk=purpose.pk)
        assert again._state.db == REPLICA
        again.name = "Renamed"
        with CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_save:
            again.save()
    assert purpose._state.db == DEFAULT_DB_ALIAS
    assert any("INSERT" in q["sql"] for q in on_primary.captured_queries)
    assert any("UPDATE" in q["sql"] for q in on_save.captured_queries)
    assert Purpose.objects.get(pk=purpose.pk).name == "Renamed"


def test_a_transaction_on_the_primary_keeps_its_reads_there():
    # Entered inside one: the block never asks the replica.
    with transaction.atomic(), replica_reads() as alias:
        assert alias == DEFAULT_DB_ALIAS
        assert Purpose.objects.all().db == DEFAULT_DB_ALIAS
    # Opened inside the block: its own writes are on the primary only.
    with replica_reads() as alias:
        assert alias == REPLICA
        with transaction.atomic():
            assert Purpose.objects.all().db == DEFAULT_DB_ALIAS
            assert read_connection().alias == DEFAULT_DB_ALIAS
        assert Purpose.objects.all().db == REPLICA


def test_without_a_replica_everything_stays_on_the_primary(monkeypatch):
    monkeypatch.delitem(settings.DATABASES, REPLICA)
    with (
        CaptureQueriesContext(connections[REPLICA]) as on_replica,
        replica_reads() as alias,
    ):
        assert alias == DEFAULT_DB_ALIAS
        assert Purpose.objects.count() > 0
    assert not on_replica.captured_queries  # not even asked for its lag


def test_nested_blocks_keep_the_outer_choice(monkeypatch):
    with replica_reads() as outer:
        # The replica falls behind meanwhile: one block, one database.
        monkeypatch.setattr(replica, "replica_lag_seconds", lambda alias: 999.0)
        replica.replica_checks_forget()
        with replica_reads() as inner:
            assert inner == outer == REPLICA


def test_the_lag_of_a_database_not_in_recovery_is_zero():
    assert replica_lag_seconds() == 0.0


def test_a_replica_behind_the_bound_is_left_for_the_primary_with_a_log_line(
    monkeypatch, caplog, settings
):
    # What a standby 45 s behind answers; on a real one, bench/_replica_check.py.
    monkeypatch.setattr(replica, "replica_lag_seconds", lambda alias: 45.0)
    settings.AMANAH_REPLICA_MAX_LAG_S = 30.0
    with (
        caplog.at_level(logging.WARNING, logger="apps.core.replica"),
        replica_reads() as alias,
    ):
        assert alias == DEFAULT_DB_ALIAS
        assert Purpose.objects.all().db == DEFAULT_DB_ALIAS
    [line] = [r for r in caplog.records if r.getMessage() == "replica.fallback"]
    assert (line.reason, line.lag_s, line.max_lag_s) == ("lag", 45.0, 30.0)


def test_a_replica_within_the_bound_is_used(monkeypatch, caplog, settings):
    monkeypatch.setattr(replica, "replica_lag_seconds", lambda alias: 29.5)
    settings.AMANAH_REPLICA_MAX_LAG_S = 30.0
    with caplog.at_level(logging.WARNING), replica_reads() as alias:
        assert alias == REPLICA
    assert not [r for r in caplog.records if r.getMessage() == "replica.fallback"]


def test_a_replica_that_does_not_answer_is_left_for_the_primary(replica_down, caplog):
    started = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="apps.core.replica"),
        replica_reads() as alias,
    ):
        assert alias == DEFAULT_DB_ALIAS
        assert Purpose.objects.count() > 0  # the read itself is served
    assert time.monotonic() - started < 2
    [line] = [r for r in caplog.records if r.getMessage() == "replica.fallback"]
    assert (line.reason, line.error) == ("no_answer", "OperationalError")


def test_no_answer_is_remembered_not_asked_per_block(replica_down, monkeypatch):
    asked = []
    real = replica.replica_lag_seconds

    def counting(alias):
        asked.append(alias)
        return real(alias)

    monkeypatch.setattr(replica, "replica_lag_seconds", counting)
    for _ in range(5):
        with replica_reads() as alias:
            assert alias == DEFAULT_DB_ALIAS
    assert asked == [REPLICA]


def test_a_lag_answer_stands_for_a_couple_of_seconds(monkeypatch):
    asked = []
    monkeypatch.setattr(
        replica, "replica_lag_seconds", lambda alias: asked.append(alias) or 0.0
    )
    for _ in range(5):
        with replica_reads():
            pass
    assert asked == [REPLICA]
    monkeypatch.setattr(replica, "CHECK_EVERY_S", 0.0)
    with replica_reads():
        pass
    assert asked == [REPLICA, REPLICA]


def test_a_stream_reads_from_the_replica_only_while_it_makes_an_item():
    def items():
        for _ in range(3):
            yield Purpose.objects.all().db, read_connection().alias

    stream = replica_stream(items)
    seen = []
    for item in stream:
        seen.append(item)
        # Between items (where the server writes the chunk out), the primary.
        assert Purpose.objects.all().db == DEFAULT_DB_ALIAS
    assert seen == [(REPLICA, REPLICA)] * 3


def test_a_stream_closed_early_leaves_the_routing_as_it_was():
    closed = []

    def items():
        try:
            yield 1
            yield 2
        finally:
            closed.append(Purpose.objects.all().db)

    stream = replica_stream(items)
    assert next(stream) == 1
    stream.close()
    assert closed == [REPLICA]
    assert Purpose.objects.all().db == DEFAULT_DB_ALIAS


def test_a_stream_chooses_its_database_when_made(replica_down):
    stream = replica_stream(lambda: iter([Purpose.objects.all().db]))
    assert list(stream) == [DEFAULT_DB_ALIAS]


def test_the_replica_is_never_migrated():
    assert router.allow_migrate(REPLICA, "consent") is False
    assert router.allow_migrate(DEFAULT_DB_ALIAS, "consent") is True


def _report_reads_on_replica(client) -> int:
    with CaptureQueriesContext(connections[REPLICA]) as on_replica:
        response = client.get(reverse("retention:report"))
    assert response.status_code == 200
    return len([q for q in on_replica if "retention_" in q["sql"]])


def test_a_session_that_sent_a_change_reads_the_primary_for_the_bound(
    client, compliance_officer
):
    sign_in(client, compliance_officer)
    assert _report_reads_on_replica(client) > 0
    before = time.time()
    # Any unsafe request pins, whatever its answer (this one is refused: 405).
    assert client.post(reverse("retention:report")).status_code == 405
    until = client.session[PIN_KEY]
    bound = settings.AMANAH_REPLICA_MAX_LAG_S
    assert before + bound <= until <= time.time() + bound + replica.CHECK_EVERY_S + 1
    assert _report_reads_on_replica(client) == 0
    # Once the pin has passed, the replica again.
    session = client.session
    session[PIN_KEY] = time.time() - 1
    session.save()
    assert _report_reads_on_replica(client) > 0


def test_an_anonymous_change_pins_nothing_and_makes_no_session(client):
    response = client.post(reverse("accounts:login"), {"username": "x"})
    assert response.status_code in (200, 302, 403)
    assert PIN_KEY not in client.session


def test_without_a_replica_a_change_pins_nothing(
    client, compliance_officer, monkeypatch
):
    monkeypatch.delitem(settings.DATABASES, REPLICA)
    sign_in(client, compliance_officer)
    client.post(reverse("retention:report"))
    assert PIN_KEY not in client.session


def test_a_replica_that_accepts_but_never_answers_is_left_after_the_timeout(caplog):
    """A host that takes the connection and says nothing (a hung server): the
    connect timeout ends the wait."""
    conn = connections[REPLICA]
    conn.close()
    saved = dict(conn.settings_dict)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshake; nobody answers
        conn.settings_dict["PORT"] = silent.getsockname()[1]
        conn.settings_dict["OPTIONS"] = {**saved["OPTIONS"], "connect_timeout": 1}
        try:
            started = time.monotonic()
            with caplog.at_level(logging.WARNING), replica_reads() as alias:
                assert alias == DEFAULT_DB_ALIAS
            waited = time.monotonic() - started
        finally:
            conn.close()
            conn.settings_dict.update(saved)
    assert 0.9 < waited < 3
    [line] = [r for r in caplog.records if r.getMessage() == "replica.fallback"]
    assert line.reason == "no_answer"


def test_a_replica_lost_in_the_middle_of_a_block_fails_that_read():
    """The choice is made when the block starts: a replica that stops answering
    after it fails the read (README, "Read replica")."""
    conn = connections[REPLICA]
    saved = conn.settings_dict["PORT"]
    with replica_reads() as alias:
        assert alias == REPLICA
        conn.close()
        conn.settings_dict["PORT"] = closed_port()
        try:
            with pytest.raises(OperationalError):
                Purpose.objects.count()
        finally:
            conn.close()
            conn.settings_dict["PORT"] = saved


def test_a_token_client_is_not_pinned(compliance_officer):
    """Only sessions are pinned: an API client signed in with a token has none."""
    from rest_framework.test import APIClient

    from apps.accounts.services import token_issue

    api = APIClient()
    api.credentials(
        HTTP_AUTHORIZATION=f"Token {token_issue(user=compliance_officer).key}"
    )
    api.post("/api/v1/ropa/")  # any unsafe request (refused: 405)
    with CaptureQueriesContext(connections[REPLICA]) as on_replica:
        assert api.get("/api/v1/ropa/?format=csv").status_code == 200
    assert [q for q in on_replica if "compliance_processingactivity" in q["sql"]]
    assert not api.cookies.get(settings.SESSION_COOKIE_NAME)
