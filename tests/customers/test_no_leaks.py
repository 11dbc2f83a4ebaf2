"""The canary customer's PII leaks into no log, audit detail or error message.

The whole-database `pg_dump`, Celery and HTML scans are in tests/security/test_leaks.py.
"""

import pytest
from django.db import connection
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from tests.conftest import LEAK_SCAN
from tests.customers.factories import CANARY, make_canary

pytestmark = pytest.mark.django_db


def _canary_values() -> list[str]:
    return list(CANARY.values())


def test_a_full_lifecycle_leaves_no_canary_in_logs_audit_or_errors(privacy_admin):
    api = APIClient()
    api.force_authenticate(privacy_admin)
    customer = make_canary(actor=privacy_admin)
    url = f"/api/v1/customers/{customer.pk}/"

    # Bad input that carries PII-like values: the errors must not echo them.
    version = {"If-Match": api.get(url)["ETag"]}
    bad_contact = api.patch(
        url,
        {"email": CANARY["email"] + "@@", "phone": "x" + CANARY["phone"]},
        headers=version,
    )
    assert bad_contact.status_code == 400
    bad = api.patch(
        url, {"notes": f"{CANARY['full_name']} 4111 1111 1111 1111"}, headers=version
    )
    assert bad.status_code == 400
    dup = api.post(
        "/api/v1/customers/", {"country": "ID", "email": CANARY["email"]}, format="json"
    )
    assert dup.status_code == 409
    for response in (bad_contact, bad, dup):
        assert not any(v in response.content.decode() for v in _canary_values())

    refused = api.get("/api/v1/customers/", {"email": CANARY["email"]})
    assert refused.status_code == 400
    assert CANARY["email"] not in refused.content.decode()
    found = api.post("/api/v1/customers/search/", {"email": CANARY["email"]})
    assert found.json()["next"] is None
    assert len(found.json()["results"]) == 1
    api.post(
        f"{url}reveal/", {"fields": ["email", "phone"], "reason": "Canary reveal test"}
    )
    with connection.cursor() as cursor:  # tamper, so the integrity failure gets logged
        cursor.execute(
            "UPDATE customers_customer SET phone = email WHERE id = %s",
            [customer.pk.hex],
        )
    assert api.get(url).status_code == 409
    api.post(f"{url}erase/")

    details = " ".join(str(e.details) for e in AuditEvent.objects.all())
    logs = "\n".join(LEAK_SCAN.lines)
    assert "crypto.integrity_failure" in logs
    for value in _canary_values():
        assert value not in details
        assert value not in logs
