"""`transaction_time_bounded`: a transaction held to a time on PostgreSQL, its
statements, its deferred checks and its server-side cursors included."""

import threading
import time
from collections.abc import Callable

import pytest
from django.db import DataError, OperationalError, connection, transaction

from apps.core.db import TransactionOverBudget, server_cursor, transaction_time_bounded

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def scratch():
    """A table of the test's own, with a deferred constraint trigger that sleeps for
    the number of seconds its row says, as a slow foreign-key check would at commit."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bound_scratch (naps float NOT NULL)")
        cursor.execute(
            "CREATE FUNCTION bound_scratch_nap() RETURNS trigger LANGUAGE plpgsql "
            "AS $$ BEGIN PERFORM pg_sleep(NEW.naps); RETURN NULL; END $$"
        )
        cursor.execute(
            "CREATE CONSTRAINT TRIGGER bound_scratch_nap AFTER INSERT ON "
            "bound_scratch DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
            "EXECUTE FUNCTION bound_scratch_nap()"
        )
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bound_scratch")
        cursor.execute("DROP FUNCTION bound_scratch_nap()")


def _rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM bound_scratch")
        return cursor.fetchone()[0]


def _insert(naps: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bound_scratch VALUES (%s)", [naps])


def _sleep(seconds: float, *, server_side: bool = False) -> None:
    with server_cursor() if server_side else connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [seconds])


def _bounded(seconds: float | None, *steps: Callable[[], None]) -> None:
    with transaction.atomic(), transaction_time_bounded(seconds):
        for step in steps:
            step()


def _timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        return cursor.fetchone()[0]


def test_a_transaction_within_its_time_commits(scratch):
    with transaction.atomic(), transaction_time_bounded(2.0):
        _insert(0)
        assert _timeout() != "0"
    assert _rows() == 1
    assert _timeout() == "0"  # the timeout was the transaction's own


def test_a_statement_past_the_time_is_cancelled_and_the_transaction_rolled_back(
    scratch,
):
    started = time.monotonic()
    with pytest.raises(TransactionOverBudget):
        _bounded(0.3, lambda: _insert(0), lambda: _sleep(5))
    assert time.monotonic() - started < 2
    assert _rows() == 0
    assert _timeout() == "0"


def test_the_time_is_the_whole_transactions_not_each_statements(scratch):
    with pytest.raises(TransactionOverBudget):  # each well within 0.5 s, not all
        _bounded(0.5, lambda: _insert(0), *[lambda: _sleep(0.1)] * 10)
    assert _rows() == 0


def test_a_server_side_cursors_statement_is_bounded_too(scratch):
    # Its first statement: nothing else has set the timeout before it.
    started = time.monotonic()
    with pytest.raises(TransactionOverBudget):
        _bounded(0.3, lambda: _sleep(5, server_side=True))
    assert time.monotonic() - started < 2


def test_djangos_server_side_cursor_is_bounded_too(scratch):
    # `QuerySet.iterator()`'s cursor DECLAREs its statement: the timeout is set apart.
    def chunked_sleep() -> None:
        with transaction.atomic(savepoint=False):
            cursor = connection.chunked_cursor()
            cursor.execute("SELECT pg_sleep(5)")
            cursor.fetchall()

    started = time.monotonic()
    with pytest.raises(TransactionOverBudget):
        _bounded(0.3, chunked_sleep)
    assert time.monotonic() - started < 2


def test_after_the_block_the_transactions_timeout_is_its_own_again(scratch):
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', '7s', true)")
        with transaction_time_bounded(2.0):
            _insert(0)
            assert _timeout() not in ("0", "7s")
        assert _timeout() == "7s"
        _sleep(0.1)  # no longer the bound's
    assert _rows() == 1


def test_the_timeout_follows_the_time_left_not_the_time_at_the_start(scratch):
    # 0.6 s spent, then a statement that would sleep 5: cancelled at the bound (1 s),
    # not 1 s after it began.
    started = time.monotonic()
    with pytest.raises(TransactionOverBudget):
        _bounded(1.0, lambda: _sleep(0.6), lambda: _sleep(5, server_side=True))
    assert time.monotonic() - started < 1.45


def _fails(seconds: float) -> None:
    """A statement that fails (division by zero) `seconds` in."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 / (count(*) - count(*)) FROM (SELECT pg_sleep(%s)) s", [seconds]
        )


# Slowly: the rollback to the savepoint comes when the timeout set before the
# failure is stale, and nothing but the rollback may run then. At once: the next
# statement comes while it is fresh.
@pytest.mark.parametrize("seconds", [0.1, 0])
def test_an_error_caught_at_a_savepoint_leaves_the_transaction_bounded(
    scratch, seconds
):
    timeouts = []

    def fails_then_goes_on() -> None:
        with pytest.raises(DataError):
            transaction.atomic()(_fails)(seconds)
        _insert(0)
        timeouts.append(_timeout())

    _bounded(2.0, fails_then_goes_on)
    assert _rows() == 1
    assert timeouts != ["0"]


def test_deferred_checks_run_within_the_time_not_after_it_at_commit(scratch):
    # Unbounded, the commit runs the slow check (COMMIT is not cancelled by a
    # statement timeout); bounded, the check runs before it, under the timeout.
    started = time.monotonic()
    with pytest.raises(TransactionOverBudget):
        _bounded(0.3, lambda: _insert(3))
    assert time.monotonic() - started < 2
    assert _rows() == 0
    _bounded(2.0, lambda: _insert(0.05))
    assert _rows() == 1


def test_inside_an_outer_transaction_nothing_is_bounded(scratch):
    with transaction.atomic(), transaction.atomic(), transaction_time_bounded(0.01):
        _insert(0.1)
        assert _timeout() == "0"
    assert _rows() == 1


def test_no_time_bounds_nothing(scratch):
    with transaction.atomic(), transaction_time_bounded(None):
        _insert(0.1)
        assert _timeout() == "0"
    assert _rows() == 1


def test_a_commits_deferred_checks_are_not_cancelled_by_a_statement_timeout(scratch):
    # Why the bound runs them before the commit: PostgreSQL's own behaviour.
    started = time.monotonic()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', '100', true)")
        _insert(0.5)
    assert time.monotonic() - started >= 0.5
    assert _rows() == 1


def test_a_statement_cancelled_by_hand_before_the_time_is_up_is_no_overrun(scratch):
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]

    def cancel() -> None:  # from the thread's own connection, once it sleeps
        try:
            with connection.cursor() as cursor:
                for _ in range(200):
                    cursor.execute(
                        "SELECT 1 FROM pg_stat_activity WHERE pid = %s "
                        "AND query LIKE %s",
                        [pid, "SELECT pg_sleep%"],
                    )
                    if cursor.fetchone():
                        break
                    time.sleep(0.01)
                cursor.execute("SELECT pg_cancel_backend(%s)", [pid])
        finally:
            connection.close()

    canceller = threading.Thread(target=cancel)
    canceller.start()
    with pytest.raises(OperationalError):
        _bounded(5.0, lambda: _sleep(3))
    canceller.join()
