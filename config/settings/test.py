"""Test settings: base settings made fast and deterministic, nothing else.

The database is PostgreSQL when DATABASE_URL points at it or one answers on
127.0.0.1:5432 (user postgres), SQLite otherwise. Each run makes its own test database.
"""

import os
import socket
import tempfile


def _postgres_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


os.environ.setdefault("DJANGO_DEBUG", "1")
if not os.environ.get("DATABASE_URL"):
    os.environ["DATABASE_URL"] = (
        "postgres://postgres@127.0.0.1:5432/amanah"
        if _postgres_answers()
        else "sqlite:///:memory:"
    )
# Fixed test keys: tests never touch the developer's own secrets file.
os.environ.setdefault(
    "DJANGO_SECRET_KEY", "test-secret-key-not-for-production-" + "x" * 20
)
os.environ.setdefault(
    "AMANAH_MASTER_KEYS", "1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)
os.environ.setdefault(
    "AMANAH_BLIND_INDEX_KEY", "H4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4c="
)
os.environ.setdefault(
    "AMANAH_SIGNING_KEY", "nZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ0="
)

# The run's own erasure journal (its worker and manage.py subprocesses inherit it);
# tests that read a journal give each its own (tmp_path).
os.environ.setdefault(
    "AMANAH_ERASURE_JOURNAL",
    os.path.join(
        tempfile.gettempdir(),
        "amanah-test-erasure-journal-"
        f"{os.environ.get('PYTEST_XDIST_TESTRUNUID', str(os.getpid()))[:12]}.jsonl",
    ),
)

# The run's own checkpoint directory; tests that read checkpoints give each its own.
os.environ.setdefault(
    "AMANAH_AUDIT_CHECKPOINT_DIR",
    os.path.join(
        tempfile.gettempdir(),
        "amanah-test-audit-checkpoints-"
        f"{os.environ.get('PYTEST_XDIST_TESTRUNUID', str(os.getpid()))[:12]}",
    ),
)

from config.settings.base import *  # noqa: E402

# A database of this run's own, so parallel runs never share or drop each other's.
_run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid()))[:12]
DATABASES["default"]["TEST"] = {"NAME": f"test_amanah_{_run_id}"}
DATABASES["default"]["CONN_MAX_AGE"] = 0
# The replica is the test database itself, through a connection of its own (TEST
# MIRROR), so tests exercise the routing on one database (apps/core/replica.py). A
# test inside a transaction reads from the primary (its writes are uncommitted);
# routing tests use `django_db(transaction=True, databases=["default", "replica"])`.
DATABASES["replica"] = {
    **DATABASES["default"],
    "OPTIONS": dict(DATABASES["default"].get("OPTIONS", {})),
    "TEST": {"MIRROR": "default"},
}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests count disposal batches of a few rows, which a loaded machine may slow past a
# second; batches sized by time are tested with their own aim
# (tests/retention/test_batch_time.py).
AMANAH_DISPOSAL_BATCH_SECONDS = 60.0
# and held to it: tests/retention/test_transaction_bound.py sets its own.
AMANAH_DISPOSAL_TRANSACTION_SECONDS = 60.0
# Each process's own cache, whatever CACHE_URL says: tests that need a shared one make
# their own (a Redis database or key prefix of the test's), and none may clear another
# service's data.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "amanah-tests",
    }
}
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
AXES_ENABLED = True
STORAGES["staticfiles"]["BACKEND"] = (
    "django.contrib.staticfiles.storage.StaticFilesStorage"
)
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {"token": "1000/minute"}
AMANAH_API_RATE = "100000/minute"
AMANAH_RECEIPT_VERIFY_RATE = "100000/minute"

# Every record reaches the leak scan (tests/conftest.py); the console shows warnings.
LOGGING["root"]["level"] = "DEBUG"
LOGGING["handlers"]["console"]["level"] = "WARNING"
LOGGING["loggers"]["faker"] = {"level": "WARNING"}
