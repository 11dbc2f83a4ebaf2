"""Development-only secrets, created once in a git-ignored file.

Only used when DJANGO_DEBUG is on: a newcomer gets a working portal without inventing
keys, and the same keys survive restarts so the encrypted demo data keeps reading.
"""

import base64
import os
import secrets
import sys
from pathlib import Path

DEV_SECRET_NAMES = (
    "DJANGO_SECRET_KEY",
    "AMANAH_MASTER_KEYS",
    "AMANAH_BLIND_INDEX_KEY",
    "AMANAH_SIGNING_KEY",
)


def _generate() -> dict[str, str]:
    return {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "AMANAH_MASTER_KEYS": "1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "AMANAH_BLIND_INDEX_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        # An Ed25519 private seed (apps/crypto/signing.py).
        "AMANAH_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }


def load_dev_secrets(path: Path) -> dict[str, str]:
    """Read the development secrets, creating the file (with a warning) once."""
    if not path.exists():
        generated = _generate()
        body = "".join(f"{name}={value}\n" for name, value in generated.items())
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(
                "# Development secrets for DJANGO_DEBUG=1 only. Not for production.\n"
            )
            fh.write(body)
        print(  # noqa: T201 - settings run before logging is configured.
            f"WARNING: created development secrets in {path.name} "
            "(DJANGO_DEBUG is on; never use these in production).",
            file=sys.stderr,
        )
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            values[name.strip()] = value.strip()
    missing = [name for name in DEV_SECRET_NAMES if not values.get(name)]
    if missing:
        # A file from before a secret was added: add it, keep the others.
        generated = _generate()
        with path.open("a") as fh:
            if not path.read_text().endswith("\n"):
                fh.write("\n")
            fh.write("".join(f"{name}={generated[name]}\n" for name in missing))
        values.update({name: generated[name] for name in missing})
        print(  # noqa: T201 - settings run before logging is configured.
            f"WARNING: added {', '.join(missing)} to {path.name} "
            "(DJANGO_DEBUG is on; never use these in production).",
            file=sys.stderr,
        )
    return values
