"""Bulk deletes of access records, for retention's disposal runs."""

from typing import Any

from apps.access.models import AccessLogEntry, Interaction
from apps.core.fastdelete import delete_cascade
from apps.core.partitions import partition_detach, partitions_disposed_drop


def access_log_delete_bulk(*, entry_ids: list[int]) -> int:
    return AccessLogEntry.objects.filter(pk__in=entry_ids).delete()[0]


def interactions_delete_bulk(*, interaction_ids: list[Any]) -> int:
    """Delete closed interactions with their relay events (contact sessions)."""
    return delete_cascade(Interaction, interaction_ids)


def access_log_month_detach(*, name: str) -> int:
    """Detach one monthly partition of the access log (`access_log_months`) in the
    caller's transaction, counted, and set it aside to be dropped
    (`access_log_months_disposed_drop`, after the commit); returns the rows it held.
    Raises PartitionBusy (a lock not granted in time: retry later), ValueError (not
    such a partition)."""
    return partition_detach(AccessLogEntry._meta.db_table, name)


def access_log_months_disposed_drop() -> list[str]:
    """Drop the access log's months set aside by `access_log_month_detach` (those of
    this run, and any a crash left), each in short transactions of its own. Returns
    their names."""
    return partitions_disposed_drop(AccessLogEntry._meta.db_table)
