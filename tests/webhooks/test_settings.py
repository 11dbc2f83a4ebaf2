from datetime import timedelta

import pytest
from django.conf import settings

from apps.webhooks.tasks import deliveries_purge_task, deliveries_send_all_due_task
from tests.config.test_settings import PRODUCTION_ENV
from tests.settings_probe import settings_value


def test_http_endpoints_are_allowed_by_default_only_in_debug():
    unset = ["AMANAH_WEBHOOK_ALLOW_HTTP"]
    assert settings_value("s.AMANAH_WEBHOOK_ALLOW_HTTP", {}, unset=unset) == "True"
    production = settings_value(
        "s.AMANAH_WEBHOOK_ALLOW_HTTP", PRODUCTION_ENV, unset=unset
    )
    assert production == "False"
    assert (
        settings_value(
            "s.AMANAH_WEBHOOK_ALLOW_HTTP",
            {"AMANAH_WEBHOOK_ALLOW_HTTP": "0"},
        )
        == "False"
    )


def test_the_defaults():
    probe = (
        "(s.AMANAH_WEBHOOK_MAX_ATTEMPTS, s.AMANAH_WEBHOOK_RETRY_SECONDS,"
        " s.AMANAH_WEBHOOK_RETRY_MAX, s.AMANAH_WEBHOOK_TIMEOUT,"
        " s.AMANAH_WEBHOOK_ALLOWED_NETWORKS, s.AMANAH_WEBHOOK_KEEP_DAYS)"
    )
    unset = [
        "AMANAH_WEBHOOK_MAX_ATTEMPTS",
        "AMANAH_WEBHOOK_RETRY_SECONDS",
        "AMANAH_WEBHOOK_RETRY_MAX",
        "AMANAH_WEBHOOK_TIMEOUT",
        "AMANAH_WEBHOOK_ALLOWED_NETWORKS",
        "AMANAH_WEBHOOK_KEEP_DAYS",
    ]
    assert settings_value(probe, {}, unset=unset) == "(8, 30.0, 21600.0, 10.0, [], 30)"


def test_beat_sends_the_retries_every_30_seconds():
    entry = settings.CELERY_BEAT_SCHEDULE["webhooks-deliver"]
    assert entry["task"] == deliveries_send_all_due_task.name == "webhooks.deliver"
    assert entry["schedule"] == timedelta(seconds=30)


def test_beat_purges_daily():
    entry = settings.CELERY_BEAT_SCHEDULE["webhooks-purge"]
    assert entry["task"] == deliveries_purge_task.name == "webhooks.purge"
    assert entry["schedule"].hour == {4}
    assert entry["schedule"].minute == {40}


def test_allowed_networks_are_read_as_cidrs_and_a_bad_one_stops_start_up():
    probe = "s.AMANAH_WEBHOOK_ALLOWED_NETWORKS"
    assert (
        settings_value(probe, {"AMANAH_WEBHOOK_ALLOWED_NETWORKS": "10.20.0.0/16,::1"})
        == "['10.20.0.0/16', '::1']"
    )
    with pytest.raises(AssertionError, match="comma-separated CIDRs"):
        settings_value(probe, {"AMANAH_WEBHOOK_ALLOWED_NETWORKS": "10.20.0.0/33"})
