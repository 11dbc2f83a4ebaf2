"""The Procfile (`make serve`, bench/soak.py) starts the production-shaped stack."""

import re
import shlex
import subprocess
from pathlib import Path

from honcho.environ import parse_procfile

ROOT = Path(__file__).resolve().parents[2]


def _processes() -> dict[str, str]:
    return dict(parse_procfile((ROOT / "Procfile").read_text()).processes)


def _expanded(name: str, **env: str) -> list[str]:
    """The command as the shell honcho uses would run it, with only `env` set."""
    done = subprocess.run(  # noqa: S603 - our own Procfile line, echoed
        ["/bin/sh", "-c", "printf '%s\\n' " + _processes()[name]],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_procfile_defines_web_worker_and_beat():
    assert set(_processes()) == {"web", "worker", "beat"}


def test_web_is_gunicorn_with_workers_and_bind_from_the_environment():
    argv = _expanded("web")
    assert argv[:2] == ["gunicorn", "config.wsgi:application"]
    assert _option(argv, "--workers") == "4"
    assert _option(argv, "--bind") == "127.0.0.1:8000"
    argv = _expanded("web", AMANAH_WEB_WORKERS="7", PORT="8123")
    assert _option(argv, "--workers") == "7"
    assert _option(argv, "--bind") == "127.0.0.1:8123"


def test_access_log_keeps_the_path_only():
    """Searches send email and phone in the body, but an old link or bookmark may still
    carry them in a query string (refused, yet requested): the access log must not
    write it, nor the referrer (a page URL) or the user agent."""
    argv = _expanded("web", AMANAH_ACCESS_LOG="/tmp/access.log")  # noqa: S108
    assert _option(argv, "--access-logfile") == "/tmp/access.log"  # noqa: S108
    fmt = _option(argv, "--access-logformat")
    assert "%(U)s" in fmt
    for leaky in ("%(r)s", "%(q)s", "%(f)s", "%(a)s", "%({"):
        assert leaky not in fmt


def test_worker_concurrency_and_beat_schedule_from_the_environment():
    worker = _expanded("worker")
    assert worker[:4] == ["celery", "-A", "config", "worker"]
    assert _option(worker, "--concurrency") == "2"
    assert _option(_expanded("worker", AMANAH_WORKERS="3"), "--concurrency") == "3"
    beat = _expanded("beat")
    assert beat[:4] == ["celery", "-A", "config", "beat"]
    # Not the repository root: beat writes its schedule file there otherwise.
    schedule = Path(_option(beat, "--schedule"))
    assert schedule.is_absolute()
    assert ROOT not in schedule.parents
    assert _option(_expanded("beat", AMANAH_BEAT_SCHEDULE="/x/s"), "--schedule") == (
        "/x/s"
    )


def test_make_serve_asks_for_every_setting_production_requires():
    settings = (ROOT / "config" / "settings" / "base.py").read_text()
    required = set(re.findall(r'_required\(\s*"(\w+)"', settings))
    assert "DJANGO_SECRET_KEY" in required
    makefile = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    needs = re.search(r"^SERVE_NEEDS := (.*)$", makefile, re.MULTILINE)
    assert needs is not None
    listed = set(shlex.split(needs.group(1)))
    assert required | {"CELERY_BROKER_URL"} <= listed
