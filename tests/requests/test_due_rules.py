"""Due dates per law, each rule with its source; the one extension each law allows."""

from datetime import UTC, datetime, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from django.urls import reverse
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.requests.models import DataRequest
from apps.requests.services import (
    DUE_RULES,
    RequestError,
    due_rule_for,
    due_rule_of,
    request_extend,
    request_open,
)
from tests.accounts.helpers import sign_in
from tests.portal.factories import make_account

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 31, 10, 0, tzinfo=UTC)


def test_every_rule_names_its_source():
    assert [r.regime for r in DUE_RULES] == [
        "CCPA",
        "UU PDP",
        "GDPR",
        "UK GDPR",
        "LGPD",
        "default",
    ]
    assert all(r.legal_source for r in DUE_RULES)
    assert due_rule_for(country="BR", region="BR-SP").legal_source == "LGPD art. 19 II"
    assert due_rule_for(country="US", region="US-CA").legal_source == (
        "CCPA, Cal. Civ. Code §1798.130(a)(2)"
    )
    assert due_rule_for(country="US", region="US-TX").regime == "default"
    # A request opened under a name no rule has any more reads as the default.
    assert due_rule_of(regime="retired").regime == "default"


def test_a_brazilian_customers_request_is_due_in_15_days(privacy_admin):
    customer = make_account(email="br@example.com", country="BR", region="BR-SP")
    request = request_open(actor=customer.user, customer=customer, kind="objection")
    assert request.regime == "LGPD"
    assert request.due_at == request.received_at + timedelta(days=15)
    # The law gives no extension.
    with pytest.raises(RequestError, match=r"\(LGPD\) allows no extension"):
        request_extend(actor=privacy_admin, request=request, reason="Many requests")


def test_a_california_request_extends_once_by_45_days(privacy_admin):
    customer = make_account(email="ca@example.com", country="US", region="US-CA")
    request = request_open(actor=customer.user, customer=customer, kind="objection")
    assert request.due_at == request.received_at + timedelta(days=45)
    due = request.due_at
    request = request_extend(
        actor=privacy_admin, request=request, reason="Many linked requests"
    )
    assert request.due_at == due + timedelta(days=45)
    assert request.extended
    assert AuditEvent.objects.filter(action="request.extended").count() == 1
    with pytest.raises(RequestError, match="already used"):
        request_extend(
            actor=privacy_admin, request=request, reason="Many linked requests"
        )
    request.refresh_from_db()
    assert request.due_at == due + timedelta(days=45)
    assert AuditEvent.objects.filter(action="request.extended").count() == 1


def test_a_uu_pdp_request_cannot_be_extended(privacy_admin):
    customer = make_account(email="id@example.com", country="ID", region="ID-JK")
    request = request_open(actor=customer.user, customer=customer, kind="objection")
    assert request.due_at == request.received_at + timedelta(hours=72)
    with pytest.raises(RequestError, match=r"\(UU PDP\) allows no extension"):
        request_extend(actor=privacy_admin, request=request, reason="Many requests")
    request.refresh_from_db()
    assert not request.extended
    assert request.due_at == request.received_at + timedelta(hours=72)
    assert not AuditEvent.objects.filter(action="request.extended").exists()


def test_a_gdpr_request_still_extends_by_two_months(privacy_admin):
    customer = make_account(email="fr@example.com", country="FR", region="")
    request = request_open(actor=customer.user, customer=customer, kind="objection")
    due = request.due_at
    request = request_extend(
        actor=privacy_admin, request=request, reason="Complex, many linked requests"
    )
    assert request.due_at == due + relativedelta(months=2)


def test_the_request_page_and_api_show_the_rules_source(client, privacy_admin):
    customer = make_account(email="br@example.com", country="BR", region="BR-SP")
    request = request_open(actor=customer.user, customer=customer, kind="objection")
    sign_in(client, privacy_admin)
    html = client.get(reverse("requests:detail", args=[request.pk])).content.decode()
    assert "Due date: LGPD art. 19 II; no extension." in html
    api = APIClient()
    api.force_authenticate(privacy_admin)
    [row] = api.get("/api/v1/requests/").json()["results"]
    assert row["regime"] == "LGPD"
    assert row["due_rule_source"] == "LGPD art. 19 II"
    assert DataRequest.objects.count() == 1


def test_the_page_says_a_californian_request_may_be_extended(client, privacy_admin):
    customer = make_account(email="ca@example.com", country="US", region="US-CA")
    request = request_open(actor=customer.user, customer=customer, kind="objection")
    sign_in(client, privacy_admin)
    html = client.get(reverse("requests:detail", args=[request.pk])).content.decode()
    assert (
        "Due date: CCPA, Cal. Civ. Code §1798.130(a)(2); extendable by 45 more days, "
        "once." in html
    )
    response = client.post(
        reverse("requests:detail", args=[request.pk]),
        {"status": "in_progress", "note": "Many linked requests", "extend": "on"},
    )
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.due_at == request.received_at + timedelta(days=90)
