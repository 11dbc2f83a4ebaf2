import pytest
from django.urls import reverse

from apps.access.models import Reveal, RevealStatus
from apps.audit.models import AuditEvent
from apps.incidents.models import Incident
from apps.monitoring.models import AlertStatus
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer
from tests.monitoring.factories import make_alert, reveals

pytestmark = pytest.mark.django_db

LIST = "/compliance/alerts/"


def _action(alert, action: str) -> str:
    return reverse("monitoring:action", args=[alert.pk, action])


def test_the_page_lists_alerts_with_evidence_and_counts(
    client, compliance_officer, support_agent
):
    make_alert(staff=support_agent, severity="high", rule="enumeration")
    dismissed = make_alert(status=AlertStatus.DISMISSED, reason="QA testing")
    sign_in(client, compliance_officer)

    response = client.get(LIST)

    assert reverse("monitoring:list") == LIST
    html = response.content.decode()
    assert response.status_code == 200
    assert "Many customers searched by email or phone" in html
    assert "not_found: 12" in html
    assert "support" in html
    assert "Reason: QA testing" in html
    assert f'href="{LIST}?status=open"' in html
    assert "High: 1" in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert _action(dismissed, "acknowledge") not in html  # handled: no buttons


def test_the_status_filter_narrows_the_list(client, privacy_admin):
    make_alert(rule="probing")
    make_alert(rule="consent_volume", status=AlertStatus.ESCALATED)
    sign_in(client, privacy_admin)
    html = client.get(LIST, {"status": "escalated"}).content.decode()
    assert "Staff consent changes at unusual volume" in html
    assert "Repeated 404s on customer ids" not in html
    assert client.get(LIST, {"status": "bogus"}).status_code == 200  # shows all


def test_the_alerts_nav_item_is_for_governance_roles(
    client, compliance_officer, support_agent
):
    sign_in(client, compliance_officer)
    assert f'href="{LIST}"' in client.get(reverse("home")).content.decode()
    client.logout()
    sign_in(client, support_agent)
    assert f'href="{LIST}"' not in client.get(reverse("home")).content.decode()


@pytest.mark.parametrize("role", ["support_agent", "delivery_agent"])
def test_agents_get_403_on_the_page_and_the_actions(client, request, role):
    user = request.getfixturevalue(role)
    alert = make_alert()
    sign_in(client, user)
    assert client.get(LIST).status_code == 403
    assert client.post(_action(alert, "acknowledge")).status_code == 403
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN
    assert not AuditEvent.objects.exists()


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get(LIST)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_acknowledge_from_the_page(client, compliance_officer):
    alert = make_alert()
    sign_in(client, compliance_officer)
    response = client.post(_action(alert, "acknowledge"), {"status_filter": "open"})
    assert response.status_code == 302
    assert response["Location"] == f"{LIST}?status=open"
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED
    assert alert.handled_by == compliance_officer


def test_dismiss_with_a_reason_from_the_page(client, compliance_officer):
    alert = make_alert()
    sign_in(client, compliance_officer)
    response = client.post(
        _action(alert, "dismiss"), {"reason": "Known QA account, see ticket 42"}
    )
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.status == AlertStatus.DISMISSED
    assert alert.reason == "Known QA account, see ticket 42"


def test_dismiss_without_a_reason_shows_the_error_and_writes_nothing(
    client, compliance_officer
):
    alert = make_alert()
    sign_in(client, compliance_officer)
    response = client.post(_action(alert, "dismiss"), {"reason": "  "})
    assert response.status_code == 400
    assert "Say why the alert is dismissed." in response.content.decode()
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN
    assert not AuditEvent.objects.exists()


def test_escalate_from_the_page_links_the_incident(client, privacy_admin):
    alert = make_alert(severity="high")
    sign_in(client, privacy_admin)
    assert client.post(_action(alert, "escalate")).status_code == 302
    alert.refresh_from_db()
    incident = Incident.objects.get()
    assert alert.incident == incident
    html = client.get(LIST).content.decode()
    assert reverse("incidents:detail", args=[incident.pk]) in html


def test_suspend_reveals_from_the_page(client, compliance_officer, support_agent):
    from django.utils import timezone

    reveals(support_agent, make_customer(), at=timezone.now())
    alert = make_alert(staff=support_agent)
    sign_in(client, compliance_officer)
    response = client.post(_action(alert, "suspend"), follow=True)
    assert "1 open reveal(s) suspended" in response.content.decode()
    assert Reveal.objects.get().status == RevealStatus.SUSPENDED


def test_a_refused_action_is_shown_on_the_page(client, compliance_officer):
    alert = make_alert(staff=None, rule="disposal_off_schedule")
    sign_in(client, compliance_officer)
    response = client.post(_action(alert, "suspend"))
    assert response.status_code == 400
    assert "This alert names no staff member." in response.content.decode()


def test_unknown_alerts_and_actions_are_404(client, compliance_officer):
    alert = make_alert()
    sign_in(client, compliance_officer)
    assert client.post(_action(alert, "delete")).status_code == 404
    missing = reverse("monitoring:action", args=[alert.pk + 1000, "acknowledge"])
    assert client.post(missing).status_code == 404
    assert client.get(_action(alert, "acknowledge")).status_code == 405


@pytest.mark.parametrize(
    "reason",
    ["bad\x00byte", "Called her on +62 812-3456-7890", "Mailed budi@example.com"],
    ids=["nul", "phone", "email"],
)
def test_a_dismiss_reason_that_cannot_or_must_not_be_kept_is_a_400(
    client, compliance_officer, reason
):
    alert = make_alert()
    sign_in(client, compliance_officer)
    response = client.post(_action(alert, "dismiss"), {"reason": reason})
    assert response.status_code == 400
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN
    assert not AuditEvent.objects.exists()
