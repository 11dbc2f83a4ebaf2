"""The audience CSV read from the replica (apps/core/replica.py): the COPY runs on
the replica's connection while the StreamingHttpResponse is iterated, after the
view has returned; a replica that does not answer leaves it to the primary."""

import csv
import io
import socket

import psycopg
import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from rest_framework.test import APIClient

from apps.consent.models import ConsentSource
from apps.core import replica
from apps.core.replica import REPLICA
from tests.consent.factories import consent_answer, reseed_purposes
from tests.customers.factories import make_customer

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA]),
]

CSV = "/api/v1/consent/audience/marketing_sms.csv"


@pytest.fixture(autouse=True)
def _fresh():
    reseed_purposes()  # a transactional test may start after another one's flush
    replica.replica_checks_forget()
    yield
    replica.replica_checks_forget()


@pytest.fixture
def audience(privacy_admin):
    yes = [make_customer() for _ in range(3)]
    for customer in yes:
        consent_answer(customer, "marketing_sms", source=ConsentSource.SELF_SERVICE)
    consent_answer(make_customer(), "analytics", source=ConsentSource.SELF_SERVICE)
    client = APIClient()
    client.force_authenticate(privacy_admin)
    return client, sorted(str(c.pk) for c in yes)


def last_query(alias: str) -> str:
    """What the backend behind `alias`'s connection ran last, asked from another."""
    pid = connections[alias].connection.info.backend_pid
    params = connections[DEFAULT_DB_ALIAS].get_connection_params()
    params.pop("cursor_factory", None)
    with psycopg.connect(**params) as other:
        row = other.execute(
            "SELECT query FROM pg_stat_activity WHERE pid = %s", [pid]
        ).fetchone()
    return row[0]


def rows_of(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


def test_the_audience_csv_is_copied_from_the_replica(audience):
    client, yes = audience
    response = client.get(CSV)
    assert response.status_code == 200
    # Nothing is read yet: the view has returned, the stream has not started.
    rows = rows_of(response)
    assert rows[0] == ["customer_id"]
    assert sorted(r[0] for r in rows[1:]) == yes
    assert last_query(REPLICA).startswith("COPY (SELECT customer_id")
    assert not last_query(DEFAULT_DB_ALIAS).startswith("COPY")


def test_the_audience_csv_comes_from_the_primary_when_the_replica_is_down(audience):
    client, yes = audience
    conn = connections[REPLICA]
    conn.close()
    saved = conn.settings_dict["PORT"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        conn.settings_dict["PORT"] = sock.getsockname()[1]  # closed once we leave
    try:
        response = client.get(CSV)
        assert response.status_code == 200
        rows = rows_of(response)
    finally:
        conn.close()
        conn.settings_dict["PORT"] = saved
    assert sorted(r[0] for r in rows[1:]) == yes
    assert last_query(DEFAULT_DB_ALIAS).startswith("COPY (SELECT customer_id")
