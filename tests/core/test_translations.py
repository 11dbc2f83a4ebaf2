"""The catalogs are complete: every text marked in the code has a translation in each
language, none is a guess (fuzzy), and the placeholders agree (`msgfmt --check`)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

LANGUAGES = [
    code for code, _name in settings.LANGUAGES if code != settings.LANGUAGE_CODE
]
LOCALE = Path(settings.BASE_DIR) / "locale"

pytestmark = pytest.mark.skipif(
    shutil.which("msgfmt") is None, reason="GNU gettext (msgfmt) is not installed"
)


def _statistics(po: Path) -> str:
    answer = subprocess.run(  # noqa: S603 - a fixed tool on a file of ours
        ["msgfmt", "--check", "--statistics", "-o", "/dev/null", str(po)],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    return answer.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def fresh_catalogs(tmp_path_factory):
    """The committed catalogs brought up to date with the marked texts by
    `makemessages`, run in a copy of the project (it writes into the `locale/` of
    the tree it reads: the repository's files are not touched)."""
    root = Path(settings.BASE_DIR)
    copy = tmp_path_factory.mktemp("project")
    skip = shutil.ignore_patterns("__pycache__", "*.mo")
    for name in ("apps", "config", "templates", "locale"):
        shutil.copytree(root / name, copy / name, ignore=skip)
    shutil.copy(root / "manage.py", copy / "manage.py")
    languages = [f"--locale={code}" for code in LANGUAGES]
    answer = subprocess.run(  # noqa: S603 - this interpreter on our own manage.py
        [sys.executable, "manage.py", "makemessages", *languages, "--verbosity=0"],
        cwd=copy,
        env={**os.environ, "DATABASE_URL": "sqlite:///:memory:"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert answer.returncode == 0, answer.stderr
    return copy / "locale"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_marked_text_is_translated(fresh_catalogs, language):
    statistics = _statistics(fresh_catalogs / language / "LC_MESSAGES" / "django.po")
    advice = f"{language}: {statistics}; run makemessages and translate (README)"
    assert "fuzzy" not in statistics, advice
    assert "untranslated" not in statistics, advice
