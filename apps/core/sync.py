"""Sync: what changed since a time, read on by cursor (docs/API.md, "Sync").

A list that takes `updated_since` answers every row changed at or after it, oldest
change first, ordered by (`updated_at`, id). A client keeps the `next` link of its last
page (or the `updated_at` of the last row it read) and asks again later.

Rows are answered once they have settled (`AMANAH_SYNC_SETTLE_SECONDS`, default 5):
a change is stamped when it is written (the statement's time) and seen when its
transaction commits, so a transaction still open could commit a change stamped before a
row a reader has already passed. Holding back the last few seconds closes that gap for
every transaction shorter than it (the API's are, by far).
"""

from datetime import timedelta
from typing import Any

from django.conf import settings
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


def settled(items: QuerySet[Any]) -> QuerySet[Any]:
    """`items` changed before the settle window: rows no open transaction can still
    stamp earlier than a row already answered."""
    horizon = timezone.now() - timedelta(seconds=settings.AMANAH_SYNC_SETTLE_SECONDS)
    return items.filter(updated_at__lt=horizon)
