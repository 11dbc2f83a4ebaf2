import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.accounts.models import Role, User
from apps.audit.tasks import audit_chain_verify_task
from config.celery import app

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_each_staff_role_idempotently(capsys, settings):
    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")
    roles = dict(
        User.objects.exclude(role=Role.CUSTOMER).values_list("username", "role")
    )
    assert roles == {
        "support": Role.SUPPORT_AGENT,
        "delivery": Role.DELIVERY_AGENT,
        "compliance": Role.COMPLIANCE_OFFICER,
        "privacy_admin": Role.PRIVACY_ADMIN,
    }
    out = capsys.readouterr().out
    assert "/accounts/login/" in out
    assert "privacy_admin" in out
    assert "/me/login/" in out
    assert User.objects.filter(role=Role.CUSTOMER).count() == 1  # the demo customer


def test_seed_demo_refuses_a_short_password():
    with pytest.raises(CommandError, match="at least 12"):
        call_command("seed_demo", password="short")
    assert not User.objects.exists()


def test_seed_demo_needs_an_explicit_password_in_production(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--password is required"):
        call_command("seed_demo")


def test_every_beat_job_names_a_registered_task():
    app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in app.tasks


def test_nightly_chain_verification_runs_as_a_task():
    assert audit_chain_verify_task.delay().get() is True


def test_seed_demo_adds_valid_synthetic_customers_in_several_countries(settings):
    from apps.customers.models import Customer, CustomerStatus
    from apps.customers.selectors import customer_list

    settings.DEBUG = True
    call_command("seed_demo", customers=30, seed=3, verbosity=0)
    assert Customer.objects.count() == 31  # and the demo customer who signs in
    assert Customer.objects.values("country").distinct().count() >= 3
    assert Customer.objects.filter(status=CustomerStatus.CLOSED).count() < 30
    customer = customer_list().first()
    assert "@" in customer.email
    assert list(customer_list(email=customer.email)) == [customer]

    call_command("seed_demo", min_customers=20, verbosity=0)  # already enough
    assert Customer.objects.count() == 31


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
