"""SoftHSM2 for the tests: a token of this run's own, in a temporary directory.

SoftHSM2 reads its configuration (`SOFTHSM2_CONF`) when the library is initialised,
so the session fixture sets it before anything loads the library; each test then gets
key labels of its own on that token (`AMANAH_PKCS11_KEY_LABEL`), and its keys are
destroyed when it ends.
"""

import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

LIBRARY = os.environ.get("AMANAH_SOFTHSM_LIBRARY", "/usr/lib/softhsm/libsofthsm2.so")
PIN = "2468"
SO_PIN = "13579"


@dataclass(frozen=True)
class SoftHsm:
    library: str
    token: str
    pin: str
    conf: str

    def settings(self, label: str) -> dict[str, str]:
        """The settings (and the environment of a `manage.py` run) that reach it."""
        return {
            "AMANAH_KEY_PROVIDER": "pkcs11",
            "AMANAH_PKCS11_LIBRARY": self.library,
            "AMANAH_PKCS11_TOKEN": self.token,
            "AMANAH_PKCS11_PIN": self.pin,
            "AMANAH_PKCS11_KEY_LABEL": label,
        }


def softhsm_make(root: Path, *, prefix: str = "amanah-test") -> SoftHsm | None:
    """A new SoftHSM2 token in `root`, or None without SoftHSM2 (the tests skip, the
    benchmarks leave their HSM rows out). Points SOFTHSM2_CONF at `root`: call it
    before anything loads the library."""
    util = shutil.which("softhsm2-util")
    if util is None or not Path(LIBRARY).exists():
        return None
    tokens = root / "tokens"
    tokens.mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\n"
        "log.level = ERROR\nslots.removable = false\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    label = f"{prefix}-{uuid.uuid4().hex[:8]}"
    init = [
        "--init-token",
        "--free",
        "--label",
        label,
        "--pin",
        PIN,
        "--so-pin",
        SO_PIN,
    ]
    subprocess.run(  # noqa: S603 - a fixed program with arguments of ours
        [util, *init], check=True, capture_output=True
    )
    return SoftHsm(library=LIBRARY, token=label, pin=PIN, conf=str(conf))


def softhsm_token(root: Path) -> SoftHsm:
    hsm = softhsm_make(root)
    if hsm is None:
        pytest.skip("no SoftHSM2 (make setup installs Debian's softhsm2)")
    return hsm
