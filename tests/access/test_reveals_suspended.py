"""While an alert holds an agent's reveals suspended, no path opens one: the service
refuses (RevealsSuspended), the API answers 403 `reveals_suspended` and the customer
page shows its notice, by the one definition the page's notice uses (the alert still
open or acknowledged); dismissing or escalating the alert lifts it. A reveal racing
the suspension waits for it under the agent's row, then sees it."""

import threading
import time

import pytest
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from apps.access import views
from apps.access.errors import REVEALS_SUSPENDED, RevealsSuspended
from apps.access.models import Reveal, RevealStatus
from apps.access.services import reveal_open
from apps.access.services import reveals as reveal_services
from apps.accounts.services import token_issue
from apps.audit.models import AuditEvent
from apps.audit.selectors import audit_chain_verify
from apps.monitoring.services import (
    alert_acknowledge,
    alert_dismiss,
    alert_escalate,
    alert_suspend_reveals,
)
from tests.access.factories import assign
from tests.accounts.factories import UserFactory
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer
from tests.monitoring.factories import make_alert

REASON = "Customer asked for a callback"


def _reveal(agent, customer):
    return reveal_open(actor=agent, customer=customer, fields=["email"], reason=REASON)


def _api(agent) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_issue(user=agent).key}")
    return client


def _api_reveal(client, customer):
    return client.post(
        f"/api/v1/customers/{customer.pk}/reveal/",
        {"fields": ["email"], "reason": REASON},
        format="json",
    )


def _suspended(agent, officer):
    alert = make_alert(staff=agent, severity="high", rule="reveal_volume")
    alert_suspend_reveals(actor=officer, alert=alert)
    alert.refresh_from_db()
    return alert


@pytest.mark.django_db
def test_the_service_refuses_a_suspended_agent(support_agent, compliance_officer):
    customer = make_customer()
    assign(support_agent, customer)
    _suspended(support_agent, compliance_officer)
    opened = AuditEvent.objects.filter(action="reveal.opened").count()
    with pytest.raises(RevealsSuspended) as refused:
        _reveal(support_agent, customer)
    assert refused.value.status == 403
    assert refused.value.code == "reveals_suspended"
    assert refused.value.field is None
    assert not Reveal.objects.filter(status=RevealStatus.GRANTED).exists()
    assert AuditEvent.objects.filter(action="reveal.opened").count() == opened


@pytest.mark.django_db
def test_an_acknowledged_alert_still_holds_the_suspension(
    support_agent, compliance_officer
):
    customer = make_customer()
    assign(support_agent, customer)
    alert = _suspended(support_agent, compliance_officer)
    alert_acknowledge(actor=compliance_officer, alert=alert)
    with pytest.raises(RevealsSuspended):
        _reveal(support_agent, customer)


@pytest.mark.django_db
def test_another_agents_alert_suspends_no_one_else(support_agent, compliance_officer):
    other = UserFactory(username="other-agent", role=support_agent.role)
    customer = make_customer()
    assign(support_agent, customer)
    _suspended(other, compliance_officer)
    reveal, _ = _reveal(support_agent, customer)
    assert reveal.status == RevealStatus.GRANTED


@pytest.mark.django_db
def test_the_api_answers_403_with_the_code_and_the_page_agrees(
    client, support_agent, compliance_officer
):
    customer = make_customer(email="jane@example.com")
    assign(support_agent, customer)
    api = _api(support_agent)
    alert = _suspended(support_agent, compliance_officer)

    response = _api_reveal(api, customer)
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "reveals_suspended"
    assert body["detail"] == REVEALS_SUSPENDED
    assert "\n" not in body["detail"]
    assert "jane@example.com" not in response.content.decode()

    sign_in(client, support_agent)
    url = reverse("staff:customer", args=[customer.pk])
    page = client.post(url, {"fields": ["email"], "reason": REASON})
    assert page.status_code == 403
    html = page.content.decode()
    assert "Your reveals are suspended." in html
    assert REVEALS_SUSPENDED in html
    assert 'name="reason"' not in html
    assert not Reveal.objects.filter(status=RevealStatus.GRANTED).exists()

    # Dismissing the alert lifts the suspension for both.
    alert_dismiss(actor=compliance_officer, alert=alert, reason="A busy morning.")
    assert _api_reveal(api, customer).status_code == 200
    html = client.get(url).content.decode()
    assert "Your reveals are suspended." not in html
    assert client.post(url, {"fields": ["email"], "reason": REASON}).status_code == 302
    assert Reveal.objects.filter(status=RevealStatus.GRANTED).count() == 2


@pytest.mark.django_db
def test_escalating_the_alert_lifts_the_suspension(support_agent, compliance_officer):
    customer = make_customer()
    assign(support_agent, customer)
    alert = _suspended(support_agent, compliance_officer)
    with pytest.raises(RevealsSuspended):
        _reveal(support_agent, customer)
    alert_escalate(actor=compliance_officer, alert=alert)
    reveal, _ = _reveal(support_agent, customer)
    assert reveal.status == RevealStatus.GRANTED


@pytest.mark.django_db
def test_a_suspension_after_the_pages_check_is_refused_by_the_service(
    client, support_agent, compliance_officer, monkeypatch
):
    """The page asks the hook first; a suspension committed after that is still
    refused by the service, and answered with the same notice."""
    customer = make_customer()
    assign(support_agent, customer)
    _suspended(support_agent, compliance_officer)
    monkeypatch.setattr(views, "reveals_suspended_since", lambda *, staff_id: None)
    sign_in(client, support_agent)
    response = client.post(
        reverse("staff:customer", args=[customer.pk]),
        {"fields": ["email"], "reason": REASON},
    )
    assert response.status_code == 403
    assert REVEALS_SUSPENDED in response.content.decode()
    assert not Reveal.objects.filter(status=RevealStatus.GRANTED).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_reveal_waiting_on_a_suspension_sees_it(monkeypatch):
    """An officer's suspension holds the agent's row; a reveal opened meanwhile waits
    on that row (the first lock it takes), and once the suspension commits it is
    refused: it is never granted after the suspension, to outlive it."""
    from apps.accounts.models import Role

    agent = UserFactory(username="agent", role=Role.SUPPORT_AGENT)
    officer = UserFactory(username="officer", role=Role.COMPLIANCE_OFFICER)
    customer = make_customer()
    assign(agent, customer)
    alert = make_alert(staff=agent, severity="high", rule="reveal_volume")

    holding, release = threading.Event(), threading.Event()
    lock_live = reveal_services.reveals_live_lock

    def lock_then_hold(*, staff):
        ids = lock_live(staff=staff)
        holding.set()
        release.wait(10)
        return ids

    monkeypatch.setattr(reveal_services, "reveals_live_lock", lock_then_hold)
    outcome: dict[str, object] = {}

    def run(name, job):
        try:
            outcome[name] = job()
        except Exception as exc:
            outcome[name] = exc
        finally:
            connection.close()

    suspender = threading.Thread(
        target=run,
        args=("suspend", lambda: alert_suspend_reveals(actor=officer, alert=alert)),
    )
    suspender.start()
    assert holding.wait(10)
    revealer = threading.Thread(
        target=run, args=("reveal", lambda: _reveal(agent, customer))
    )
    revealer.start()
    # The reveal waits on the agent's row, which the suspension holds.
    for _ in range(100):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                break
        time.sleep(0.05)
    else:
        pytest.fail("the reveal never waited on the suspension")
    release.set()
    suspender.join(20)
    revealer.join(20)

    assert outcome["suspend"] == 0, outcome
    assert isinstance(outcome["reveal"], RevealsSuspended), outcome
    assert not Reveal.objects.filter(status=RevealStatus.GRANTED).exists()
    report = audit_chain_verify()
    assert report.ok, report.summary
