"""Database helpers shared by the apps."""

import time
from typing import Any

import psycopg
from django.db import connection


def declare_disposal() -> None:
    """Mark the current transaction as a retention disposal: append-only tables (the
    consent ledger) accept its DELETEs, and only its, until the transaction ends."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL amanah.disposal = 'on'")


class _LoggedCursor(psycopg.Cursor):
    """psycopg's server-side-binding cursor whose statements still reach Django's
    query log when Django keeps one (DEBUG, CaptureQueriesContext): SQL text only,
    the parameters travel apart and are never logged."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return super().execute(query, params, **kwargs)
        finally:
            if connection.queries_logged:
                connection.queries_log.append(
                    {"sql": str(query), "time": f"{time.monotonic() - started:.3f}"}
                )


def server_cursor():
    """On PostgreSQL a server-side-binding cursor on Django's connection (same
    transaction): many keys travel as one binary array instead of being quoted into
    the SQL text one by one in Python, and a statement can be prepared once per
    connection. Elsewhere Django's own cursor."""
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        return _LoggedCursor(connection.connection)
    return connection.cursor()
