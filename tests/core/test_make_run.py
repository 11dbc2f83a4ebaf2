"""`make run PORT=...`: the dev server, seed_demo and the links in emails all on the
port asked for (make -n prints the commands without running them)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make")


def dry_run(*args: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "AMANAH_PUBLIC_URL"}
    # The recipe's own lines only: its prerequisites (setup, migrate) are assumed made.
    return subprocess.run(  # noqa: S603 - our own Makefile, fixed arguments
        ["make", "-n", "-o", "migrate", "run", *args],  # noqa: S607 - make on PATH
        cwd=ROOT,
        env={**environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_make_run_serves_on_port_8000_by_default():
    out = dry_run()
    assert "runserver 127.0.0.1:8000" in out
    assert "AMANAH_PUBLIC_URL=http://127.0.0.1:8000 " in out


def test_make_run_port_moves_the_server_the_links_and_seed_demo():
    out = dry_run("PORT=8001")
    lines = out.splitlines()
    server = next(line for line in lines if "runserver" in line)
    seed = next(line for line in lines if "seed_demo" in line)
    assert server.endswith("runserver 127.0.0.1:8001")
    assert "AMANAH_PUBLIC_URL=http://127.0.0.1:8001 " in server
    assert "AMANAH_PUBLIC_URL=http://127.0.0.1:8001 " in seed
    assert "8000" not in out


def test_a_public_url_set_in_the_environment_is_kept():
    out = dry_run("PORT=8001", AMANAH_PUBLIC_URL="https://demo.example.com")
    assert "AMANAH_PUBLIC_URL=https://demo.example.com " in out
    assert "runserver 127.0.0.1:8001" in out
