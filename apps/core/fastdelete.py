# ruff: noqa: S608 - table and column names come from model metadata, values are params.
"""Set-based deletes that follow Django's on_delete rules in SQL, in bounded batches.

`QuerySet.delete()` loads every related row into Python to cascade; disposing of
hundreds of thousands of customers that way takes minutes and gigabytes. This walks the
same relations from the model's metadata and issues one statement per related table
with the batch's keys as an array parameter, so the plan stays correct as tables are
added, and memory stays flat.
"""

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from django.db import connection, models
from django.db.models.deletion import get_candidate_relations_to_delete

from apps.core.db import server_cursor


class ProtectedRows(Exception):
    """A PROTECT relation still points at rows being deleted."""


def _quoted(name: str) -> str:
    return connection.ops.quote_name(name)


def ids_in(column: str, pks: list[Any]) -> tuple[str, list[Any]]:
    """`column = ANY(array)` on PostgreSQL (one binary parameter), `IN (...)`
    elsewhere."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%b)", [pks]
    # Raw parameters skip the field's conversion: UUIDs go as Django stores them.
    values = [pk.hex if isinstance(pk, UUID) else pk for pk in pks]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", values


def _relations(model: type[models.Model]) -> list[Any]:
    """Every relation pointing at `model`, hidden ones (related_name="+") included,
    as Django's own Collector finds them."""
    rels = list(get_candidate_relations_to_delete(model._meta))
    # Leaves first: rows that others point at by SET_NULL are gone before those updates.
    return sorted(rels, key=lambda rel: len(list(_children(rel.related_model))))


def _children(model: type[models.Model]) -> Iterable[Any]:
    return get_candidate_relations_to_delete(model._meta)


def delete_cascade(
    model: type[models.Model],
    pks: Sequence[Any],
    *,
    emptied: tuple[type[models.Model], ...] = (),
) -> int:
    """Delete rows of `model` by primary key with their dependents. Runs in the
    caller's transaction. Returns how many `model` rows were deleted.

    `emptied`: models whose rows pointing at these the caller has already deleted in
    this transaction (the customers, before their data keys): those relations are
    skipped. The database's foreign keys still check them at commit."""
    if not pks:
        return 0
    pks = list(pks)
    # Table and column names below come from model metadata, quoted; values are bound
    # parameters (`ids_in`): nothing from a request reaches the SQL text.
    with server_cursor() as cursor:
        for rel in _relations(model):
            child = rel.related_model
            column = _quoted(rel.field.column)
            table = _quoted(child._meta.db_table)
            handler = rel.on_delete
            if handler is models.DO_NOTHING or child in emptied:
                continue
            where, params = ids_in(column, pks)
            if handler is models.CASCADE:
                if any(True for _ in _children(child)):
                    pk_column = _quoted(child._meta.pk.column)
                    sql = f"SELECT {pk_column} FROM {table} WHERE {where}"  # nosec B608
                    cursor.execute(sql, params)
                    delete_cascade(child, [row[0] for row in cursor.fetchall()])
                else:
                    sql = f"DELETE FROM {table} WHERE {where}"  # nosec B608
                    cursor.execute(sql, params)
            elif handler is models.SET_NULL:
                sql = f"UPDATE {table} SET {column} = NULL WHERE {where}"  # nosec B608
                cursor.execute(sql, params)
            else:  # PROTECT, RESTRICT and the rest: refuse rather than guess
                sql = f"SELECT 1 FROM {table} WHERE {where} LIMIT 1"  # nosec B608
                cursor.execute(sql, params)
                if cursor.fetchone():
                    raise ProtectedRows(f"{child._meta.label} still refers to them.")
        # A primary key is a concrete field: its column is never None.
        pk_name = _quoted(model._meta.pk.column)  # type: ignore[arg-type]
        where, params = ids_in(pk_name, pks)
        table = _quoted(model._meta.db_table)
        sql = f"DELETE FROM {table} WHERE {where}"  # nosec B608
        cursor.execute(sql, params)
        return cursor.rowcount
