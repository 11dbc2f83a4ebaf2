"""The Celery app of a worker process that a broker test starts
(`celery -A tests.broker_worker worker`, see tests/brokers.py): the project's app and
tasks on the test's database (DATABASE_URL) and broker (CELERY_BROKER_URL), with what
the test adds to its configuration (AMANAH_TEST_CELERY, JSON). Not eager: a task queues
the next one as it does in production."""

import json
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
django.setup()

from django.conf import settings  # noqa: E402

from config.celery import app  # noqa: E402

settings.CELERY_TASK_ALWAYS_EAGER = False
app.conf.update(
    task_always_eager=False, **json.loads(os.environ.get("AMANAH_TEST_CELERY", "{}"))
)
