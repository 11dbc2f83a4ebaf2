import pytest
from django.conf import settings

from apps.audit.tasks import audit_chain_verify_task
from config.celery import app

pytestmark = pytest.mark.django_db


def test_every_beat_job_names_a_registered_task():
    app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks


def test_nightly_chain_verification_runs_as_a_task():
    assert audit_chain_verify_task.delay().get() is True


def test_every_late_acknowledged_task_ends_before_its_message_is_handed_on():
    """A worker killed mid-task leaves its message unacknowledged; Redis hands it to
    another worker after the visibility timeout (kombu's default: an hour). Each task
    that acknowledges late is stopped before then, so it never runs twice at once."""
    app.loader.import_default_modules()
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    assert visibility == settings.AMANAH_BROKER_VISIBILITY_TIMEOUT < 3600
    assert app.conf.task_reject_on_worker_lost is True  # a killed pool process's too
    late = {name: task for name, task in app.tasks.items() if task.acks_late}
    assert "retention.purge_batch" in late
    assert "incidents.send_notices" in late
    # Read-only and long over a big chain: acknowledged on receipt instead.
    assert "audit.verify_chain" not in late
    for name, task in late.items():
        hard = task.time_limit or app.conf.task_time_limit
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        assert hard is not None, name
        assert soft < hard < visibility, name


def test_a_task_time_limit_at_or_over_the_visibility_timeout_stops_start_up():
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "AMANAH_BROKER_VISIBILITY_TIMEOUT": "300",
        "AMANAH_TASK_TIME_LIMIT": "300",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "Configuration error: AMANAH_TASK_TIME_LIMIT (300 s) must be below "
        "AMANAH_BROKER_VISIBILITY_TIMEOUT (300 s): a task still running when its "
        "message is handed on would run twice at once."
    ]
