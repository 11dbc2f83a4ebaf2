"""The cockpit and the record of processing activities' downloads read from the
replica (apps/core/replica.py); on the tests' mirror of the database."""

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from rest_framework.test import APIClient

from apps.core import replica
from apps.core.replica import REPLICA
from tests.accounts.helpers import sign_in

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA]),
]


@pytest.fixture(autouse=True)
def _fresh_answers():
    replica.replica_checks_forget()
    yield
    replica.replica_checks_forget()


def reads_of(captured, table: str) -> list[str]:
    return [q["sql"] for q in captured if table in q["sql"]]


def test_the_cockpit_reads_from_the_replica(client, compliance_officer):
    sign_in(client, compliance_officer)
    with (
        CaptureQueriesContext(connections[REPLICA]) as on_replica,
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_primary,
    ):
        response = client.get(reverse("compliance:home"))
    assert response.status_code == 200
    for table in ("monitoring_alert", "incidents_incident", "dsr_datarequest"):
        assert reads_of(on_replica, table), table
        assert not reads_of(on_primary, table), table


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_the_ropa_download_reads_from_the_replica(client, compliance_officer, fmt):
    sign_in(client, compliance_officer)
    with (
        CaptureQueriesContext(connections[REPLICA]) as on_replica,
        CaptureQueriesContext(connections[DEFAULT_DB_ALIAS]) as on_primary,
    ):
        response = client.get(reverse("compliance:ropa") + f"?format={fmt}")
    assert response.status_code == 200
    assert reads_of(on_replica, "compliance_processingactivity")
    assert not reads_of(on_primary, "compliance_processingactivity")


def test_the_ropa_api_reads_from_the_replica(compliance_officer):
    api = APIClient()
    api.force_authenticate(compliance_officer)
    with CaptureQueriesContext(connections[REPLICA]) as on_replica:
        response = api.get("/api/v1/ropa/?format=csv")
    assert response.status_code == 200
    assert reads_of(on_replica, "compliance_processingactivity")


def test_the_ropa_page_itself_reads_from_the_primary(client, compliance_officer):
    """Privacy admins edit activities there and come straight back to it."""
    sign_in(client, compliance_officer)
    with CaptureQueriesContext(connections[REPLICA]) as on_replica:
        response = client.get(reverse("compliance:ropa"))
    assert response.status_code == 200
    assert not reads_of(on_replica, "compliance_processingactivity")
