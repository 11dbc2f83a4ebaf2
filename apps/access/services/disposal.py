"""Bulk deletes of access records, for retention's disposal runs."""

from typing import Any

from apps.access.models import AccessLogEntry, Interaction
from apps.core.fastdelete import delete_cascade


def access_log_delete_bulk(*, entry_ids: list[int]) -> int:
    return AccessLogEntry.objects.filter(pk__in=entry_ids).delete()[0]


def interactions_delete_bulk(*, interaction_ids: list[Any]) -> int:
    """Delete closed interactions with their relay events (contact sessions)."""
    return delete_cascade(Interaction, interaction_ids)
