import pytest
from django.conf import settings
from django.db import connection

from apps.accounts.models import Role
from tests.accounts.factories import UserFactory


def pytest_report_header(config):
    engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    if engine == "postgresql":
        db = settings.DATABASES["default"]
        host = db.get("HOST") or "socket"
        return f"database: PostgreSQL at {host}:{db.get('PORT') or 5432}"
    return (
        "database: SQLite (no PostgreSQL answered on 127.0.0.1:5432; set DATABASE_URL)"
    )


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
