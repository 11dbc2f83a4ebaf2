from apps.webhooks.models import EventType
from apps.webhooks.services import endpoint_create

ALL_TYPES = list(EventType.values)


def make_endpoint(actor, url: str, events=None, **kwargs):
    """An endpoint (and its secret) for every event type unless `events` says."""
    return endpoint_create(actor=actor, url=url, events=events or ALL_TYPES, **kwargs)
