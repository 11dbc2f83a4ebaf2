"""The retention report reads from the replica (apps/core/replica.py): the command,
the page and its CSV/JSON downloads; on the tests' mirror of the database."""

import io
import time
from importlib import import_module

import pytest
from django.apps import apps
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from apps.core import replica
from apps.core.replica import PIN_KEY, REPLICA
from apps.retention.models import RetentionPolicy
from tests.accounts.helpers import sign_in
from tests.retention.factories import policy_form_data

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, databases=[DEFAULT_DB_ALIAS, REPLICA]),
]


@pytest.fixture(autouse=True)
def _fresh_answers():
    replica.replica_checks_forget()
    yield
    replica.replica_checks_forget()


def report_queries(captured) -> list[str]:
    return [q["sql"] for q in captured if "retention_retentionpolicy" in q["sql"]]


def test_the_report_command_reads_from_the_replica():
    with CaptureQueriesContext(connections[REPLICA]) as on_replica:
        call_command("retention_report", stdout=io.StringIO())
    assert report_queries(on_replica)


@pytest.mark.parametrize("query", ["", "?format=csv", "?format=json"])
def test_the_report_page_and_downloads_read_from_the_replica(
    client, compliance_officer, query
):
    sign_in(client, compliance_officer)
    with CaptureQueriesContext(connections[REPLICA]) as on_replica:
        response = client.get(reverse("retention:report") + query)
    assert response.status_code == 200
    assert report_queries(on_replica)


def test_a_saved_policy_is_on_the_report_opened_right_after(client, privacy_admin):
    # A transactional test may start after another one's flush.
    import_module("apps.retention.migrations.0002_seed_policies").seed(apps, None)
    sign_in(client, privacy_admin)
    policy = RetentionPolicy.objects.get(code="access-log")
    data = policy_form_data(policy, period_days=400)
    url = reverse("retention:policy-edit", args=["access-log"])
    assert client.post(url, data).status_code == 302
    with CaptureQueriesContext(connections[REPLICA]) as on_replica:
        report = client.get(reverse("retention:report") + "?format=json").json()
    assert not report_queries(on_replica)
    saved = next(p for p in report["policies"] if p["code"] == "access-log")
    assert saved["period_days"] == 400
    # Once the pin has passed, the report reads from the replica again.
    session = client.session
    session[PIN_KEY] = time.time() - 1
    session.save()
    with CaptureQueriesContext(connections[REPLICA]) as on_replica:
        client.get(reverse("retention:report") + "?format=json")
    assert report_queries(on_replica)
