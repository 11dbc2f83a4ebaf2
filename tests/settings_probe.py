"""Read the development settings in a fresh interpreter, with some environment
variables set and others unset: settings are read once, at import."""

import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def settings_value(
    expression: str, env: dict[str, str], *, unset: Iterable[str] = ()
) -> str:
    """What `expression` over `config.settings.base` (as `s`) prints, with `env` set
    and the variables in `unset` removed."""
    dropped = set(unset)
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    result = subprocess.run(  # noqa: S603 - our own interpreter
        [
            sys.executable,
            "-c",
            f"from config.settings import base as s; print({expression})",
        ],
        cwd=ROOT,
        env={**clean, "DJANGO_DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
