"""How long ago, as the cockpit says it: "just now" under a minute, never
"0 minutes ago"."""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def ago(value: datetime | None, at: datetime | None = None) -> str:
    """`value`'s age as of `at` (now): "just now", or "3 hours ago"."""
    if value is None:
        return ""
    at = at or timezone.now()
    if (at - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value, at)} ago"
