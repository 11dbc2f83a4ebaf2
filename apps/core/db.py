from django.db import connection


def declare_disposal() -> None:
    """Mark the current transaction as a retention disposal: append-only tables (the
    consent ledger) accept its DELETEs, and only its, until the transaction ends."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL amanah.disposal = 'on'")
