"""What a command needs to know of the Celery workers: the broker it talks to (its
password masked), the queue a task goes to, and which workers consume it. Celery's
current app, so apps never import the project's configuration (config/celery.py)."""

from celery import current_app
from celery.app.task import Task
from kombu.utils.url import maybe_sanitize_url


def broker_shown() -> str:
    """The current app's broker URL with its password masked, for messages."""
    return maybe_sanitize_url(current_app.conf.broker_url or "")


def task_queue(task: Task) -> str:
    """The queue the current app sends `task` to."""
    return current_app.amqp.router.route({}, task.name)["queue"].name


def workers_consuming(queue: str, *, timeout: float) -> list[str]:
    """The names of the workers that answer within `timeout` seconds and consume
    `queue`. Raises kombu's OperationalError when the broker cannot be reached."""
    replies = current_app.control.inspect(timeout=timeout).active_queues() or {}
    return sorted(
        name
        for name, queues in replies.items()
        if any(q.get("name") == queue for q in queues or ())
    )
