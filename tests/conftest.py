import contextlib
import logging
import os
import shutil

import pytest
from django.conf import settings
from django.db import connection

from apps.accounts.models import Role
from tests.accounts.factories import UserFactory
from tests.hsm import softhsm_token


def pytest_sessionstart(session):
    """Say which database the run uses, even under `-q` (which hides report headers)."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(_database_line())
    # `make security`: its PostgreSQL-only checks (fuzzing, pg_dump, Redis) would all
    # skip on SQLite and the run would pass having checked little.
    engine = settings.DATABASES["default"]["ENGINE"]
    if os.environ.get("AMANAH_REQUIRE_POSTGRES") and not engine.endswith("postgresql"):
        pytest.exit("This run needs PostgreSQL (set DATABASE_URL).", returncode=1)


def _database_line() -> str:
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    if engine == "postgresql":
        db = settings.DATABASES["default"]
        host = db.get("HOST") or "socket"
        return f"database: PostgreSQL at {host}:{db.get('PORT') or 5432}"
    return (
        "database: SQLite (no PostgreSQL answered on 127.0.0.1:5432; set DATABASE_URL)"
    )


_STANDARD_RECORD_KEYS = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class LeakScanHandler(logging.Handler):
    """Keeps every log line of the run, with its extras, for the canary scan."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        extras = {
            k: v for k, v in record.__dict__.items() if k not in _STANDARD_RECORD_KEYS
        }
        self.lines.append(f"{self.format(record)} {extras!r}")


LEAK_SCAN = LeakScanHandler()


def pytest_configure(config):
    logging.getLogger().addHandler(LEAK_SCAN)
    _flush_with_triggers_off()


def _flush_with_triggers_off() -> None:
    """The audit trail, its chain head and the consent ledger refuse TRUNCATE whatever a
    session sets (their migrations); Django empties the test database between
    transactional tests with one TRUNCATE of every table. So the suite's flush, and only
    it, runs with `session_replication_role = replica`, in which ordinary triggers
    (TRUNCATE ones too) do not fire. Only a superuser may set it, as the test
    database's user (`postgres`) is; application code never sets it."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    flush = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, **options):
        statements = flush(self, style, tables, **options)
        if not statements:
            return statements
        # execute_sql_flush runs them in one transaction: SET LOCAL covers TRUNCATE.
        return ["SET LOCAL session_replication_role = replica", *statements]

    DatabaseOperations.sql_flush = sql_flush


@pytest.fixture(autouse=True)
def _leak_scan_attached():
    """Re-attach the scan after a logging re-setup (Celery calls django.setup)."""
    root = logging.getLogger()
    if LEAK_SCAN not in root.handlers:
        root.addHandler(LEAK_SCAN)
        root.setLevel(logging.DEBUG)


@pytest.fixture(autouse=True)
def _english_between_tests():
    """Each test starts and ends in the source language: a test client's request
    activates the page's language (LocaleMiddleware, apps/portal/language.py) on
    this thread and leaves it active, which would translate the next test's
    messages."""
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _replica_where_declared(request, monkeypatch):
    """Reads go to the replica (the test database's mirror, config/settings/test.py)
    only in tests that declare it (`django_db(databases=[..., "replica"])`): Django
    refuses a test any connection it did not declare, in a live server's threads
    too. A test inside a transaction reads from the primary anyway."""
    from apps.core import replica

    marker = request.node.get_closest_marker("django_db")
    databases = marker.kwargs.get("databases") if marker else None
    if databases != "__all__" and replica.REPLICA not in (databases or ()):
        monkeypatch.setattr(replica, "replica_configured", lambda: False)


@pytest.fixture(autouse=True)
def _rate_limit_counting():
    """A test that took the shared cache down leaves the API's limiter counting again
    (it skips the cache for a few seconds after a failure, per process)."""
    yield
    from apps.accounts.throttling import ApiRateThrottle

    ApiRateThrottle.uncounted_until = 0.0


def pytest_sessionfinish(session, exitstatus):
    """A canary customer's values must appear in no log line of the whole run. The
    run's own erasure journal (config/settings/test.py) goes with the run."""
    from tests.customers.factories import CANARY

    if not hasattr(session.config, "workerinput"):  # the controller, after workers
        journal = settings.AMANAH_ERASURE_JOURNAL
        if os.path.basename(journal).startswith("amanah-test-erasure-journal-"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(journal)

    leaks = [
        key
        for line in LEAK_SCAN.lines
        for key, value in CANARY.items()
        if value in line
    ]
    if leaks:
        # The canary's field names only: the log line itself holds the leaked value.
        session.config.get_terminal_writer().line(
            f"LEAK: canary PII in {len(leaks)} log line(s): {sorted(set(leaks))}",
            red=True,
        )
        session.exitstatus = 1


def pytest_collection_modifyitems(config, items):
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def support_agent(db):
    return UserFactory(username="support", role=Role.SUPPORT_AGENT)


@pytest.fixture
def delivery_agent(db):
    return UserFactory(username="delivery", role=Role.DELIVERY_AGENT)


@pytest.fixture
def compliance_officer(db):
    return UserFactory(username="compliance", role=Role.COMPLIANCE_OFFICER)


@pytest.fixture
def privacy_admin(db):
    return UserFactory(username="privacy_admin", role=Role.PRIVACY_ADMIN)


@pytest.fixture
def customer_user(db):
    return UserFactory(username="c-demo", role=Role.CUSTOMER)


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory):
    """A SoftHSM2 token of this test run's (tests/hsm.py); skips without SoftHSM2."""
    return softhsm_token(tmp_path_factory.mktemp("softhsm"))


@pytest.fixture
def hsm(settings, softhsm):
    """Master keys in the SoftHSM2 token, under labels of this test's own: the
    `pkcs11` provider, with no `env` keys. Destroyed when the test ends."""
    import uuid

    from apps.crypto.keyring import key_ring

    for name, value in softhsm.settings(f"t-{uuid.uuid4().hex[:12]}").items():
        setattr(settings, name, value)
    settings.AMANAH_MASTER_KEYS = ""
    yield softhsm
    ring = key_ring()
    for version in ring.versions():
        ring.destroy(version)


CHROMIUM = os.environ.get("AMANAH_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium through Playwright; the test skips without one."""
    if not shutil.which(CHROMIUM):
        pytest.skip(
            f"no Chromium at {CHROMIUM} (make setup installs Debian's chromium)"
        )
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright runs an event loop in this thread; the ORM calls here are synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
