"""Sync: what changed since a time, read on by cursor (docs/API.md, "Sync").

A list that takes `updated_since` answers every row changed at or after it, oldest
change first, ordered by (`updated_at`, id). A client keeps the `next` link of its last
page (or the `updated_at` of the last row it read) and asks again later.

Rows are answered once they have settled. A change is stamped when it is written and
seen when its transaction commits, so a transaction still open could commit a change
stamped before a row a reader has already passed. So the feed stops short of both:
- `AMANAH_SYNC_SETTLE_SECONDS` (default 5) before now (clocks of app and database
  hosts a little apart, a stamp taken just before its write);
- on PostgreSQL, the start of the oldest transaction still open that has written
  something or waits for a lock (pg_stat_activity: `backend_xid`, `wait_event_type`),
  the same settle time before it. Read-only transactions (a report, a backup) hold
  nothing back. The app's one database role sees its own sessions there; a
  transaction left open holds the feeds back (they wait, they lose nothing) until it
  ends.
"""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import serializers

from apps.core.pagination import Order

SYNC_ORDER = Order(("updated_at", "pk"))


class UpdatedSinceSerializer(serializers.Serializer):
    updated_since = serializers.DateTimeField(
        required=False,
        help_text="Only what changed at or after this time (ISO 8601), oldest change "
        "first; changes show once they are a few seconds old.",
    )


# The oldest transaction that may still commit a change: it has written (an xid) or
# waits for a lock to write. The reader's own is not one.
_OLDEST_WRITER_SQL = """
SELECT clock_timestamp(), min(xact_start) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND xact_start IS NOT NULL
  AND (backend_xid IS NOT NULL OR wait_event_type = 'Lock')
"""


def sync_horizon() -> datetime:
    """Where the sync feeds stop: before it, no transaction still open can commit a
    change (see the module's docstring)."""
    settle = timedelta(seconds=settings.AMANAH_SYNC_SETTLE_SECONDS)
    if connection.vendor != "postgresql":
        return timezone.now() - settle
    with connection.cursor() as cursor:
        cursor.execute(_OLDEST_WRITER_SQL)
        now, oldest = cursor.fetchone()
    return min(now, oldest or now) - settle


def settled(items: QuerySet[Any]) -> QuerySet[Any]:
    """`items` changed before the horizon: rows no open transaction can still stamp
    earlier than a row already answered."""
    return items.filter(updated_at__lt=sync_horizon())
