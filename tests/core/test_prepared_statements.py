"""Prepared statements on PostgreSQL: the statements that ask for it are prepared,
and psycopg keeps nothing of the others (Django's, their values written in)."""

import uuid

import pytest
from django.db import connection

from apps.core.db import server_cursor
from apps.customers.models import Customer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

ASKED = "SELECT 1 + %s"


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_statement_that_asks_is_prepared_once_and_reused():
    for n in range(3):
        with server_cursor() as cursor:
            cursor.execute(ASKED, [n], prepare=True)
            assert cursor.fetchone() == (n + 1,)
    assert _prepared() == ["SELECT 1 + $1"]


def test_psycopg_keeps_no_text_of_the_statements_it_does_not_prepare():
    ids = [uuid.uuid4() for _ in range(500)]
    with server_cursor() as cursor:
        cursor.execute(ASKED, [1], prepare=True)  # prepared statements in use
    for _ in range(3):
        assert not Customer.objects.filter(pk__in=ids).exists()
        with server_cursor() as cursor:
            cursor.execute("SELECT 2 + %s", [1])
    # psycopg counts the statements it might prepare by their text while its
    # connection has a threshold: these hold 500 ids each.
    assert connection.connection.prepare_threshold is None
    assert not connection.connection._prepared._counts
    assert _prepared() == ["SELECT 1 + $1"]
