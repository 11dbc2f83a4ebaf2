"""When the nightly disposal runs: retention's AMANAH_DISPOSAL_AT, which sets the beat
job; deployments that still set its former name, AMANAH_MONITOR_DISPOSAL_AT, keep
their time."""

from datetime import time
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.retention.selectors import disposal_scheduled_at
from tests.settings_probe import settings_value

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("AMANAH_DISPOSAL_AT", "AMANAH_MONITOR_DISPOSAL_AT")


def _schedule(env: dict[str, str]) -> str:
    """The setting and the beat job's hour and minute, with `env` set."""
    return settings_value(
        "s.AMANAH_DISPOSAL_AT, *s.CELERY_BEAT_SCHEDULE['retention-purge-nightly']"
        "['schedule'].hour, *s.CELERY_BEAT_SCHEDULE['retention-purge-nightly']"
        "['schedule'].minute",
        env,
        unset=NAMES,
    )


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "02:30 2 30"),
        ({"AMANAH_DISPOSAL_AT": "03:15"}, "03:15 3 15"),
        ({"AMANAH_MONITOR_DISPOSAL_AT": "04:05"}, "04:05 4 5"),
        (
            {"AMANAH_DISPOSAL_AT": "03:15", "AMANAH_MONITOR_DISPOSAL_AT": "04:05"},
            "03:15 3 15",
        ),
    ],
)
def test_the_nightly_job_runs_at_the_disposal_time(env, expected):
    assert _schedule(env) == expected


def test_the_disposal_time_is_read_at_call_time(settings):
    settings.AMANAH_DISPOSAL_AT = "01:45"
    assert disposal_scheduled_at() == time(1, 45)
    settings.AMANAH_DISPOSAL_AT = "quarter to two"
    with pytest.raises(
        ImproperlyConfigured,
        match=r"^AMANAH_DISPOSAL_AT \(or AMANAH_MONITOR_DISPOSAL_AT, its former "
        r"name\) must be HH:MM, not 'quarter to two'$",
    ):
        disposal_scheduled_at()
