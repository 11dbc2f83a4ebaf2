from celery import shared_task
from django.db import OperationalError

from apps.monitoring.services import (
    alert_notify,
    alerts_notify_pending,
    lookups_prune,
    rules_evaluate,
)


@shared_task(
    name="monitoring.evaluate_rules",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def rules_evaluate_task() -> int:
    """Every rule for everyone (beat, every five minutes); high alerts never emailed
    are emailed; old lookups pruned."""
    raised = rules_evaluate()
    alerts_notify_pending()
    lookups_prune()
    return len(raised)


@shared_task(
    name="monitoring.evaluate_for_staff",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def rules_evaluate_for_staff_task(staff_id: int) -> int:
    """The reveal-related rules for one agent, right after their reveal."""
    return len(rules_evaluate(staff_id=staff_id, on_reveal=True))


@shared_task(
    name="monitoring.notify_alert",
    acks_late=True,
    autoretry_for=(OperationalError, OSError),  # SMTP errors are OSErrors
    retry_backoff=True,
    max_retries=5,
)
def alert_notify_task(alert_id: int) -> int:
    return alert_notify(alert_id=alert_id)
