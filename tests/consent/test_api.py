import csv
import io

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.consent.models import ConsentEvent, ConsentSource
from apps.consent.services import unsubscribe_resolve
from tests.access.factories import assign
from tests.accounts.factories import UserFactory
from tests.consent.factories import consent_answer
from tests.customers.factories import make_customer
from tests.errors import error_code, error_fields

pytestmark = pytest.mark.django_db

AUDIENCE = "/api/v1/consent/audience/"


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def set_consent(customer, code, granted=True):
    consent_answer(customer, code, granted, source=ConsentSource.SELF_SERVICE)


def test_staff_read_the_current_state_per_purpose(support_agent):
    customer = make_customer()
    set_consent(customer, "analytics")
    assign(support_agent, customer)
    response = client_for(support_agent).get(
        f"/api/v1/customers/{customer.pk}/consents/"
    )
    assert response.status_code == 200
    rows = {row["purpose"]: row for row in response.json()}
    assert rows["analytics"]["granted"] is True
    assert rows["analytics"]["notice_version"] == 1
    assert rows["analytics"]["source"] == "self_service"
    assert rows["marketing_sms"]["granted"] is False
    assert rows["marketing_sms"]["updated_at"] is None


def test_an_assigned_agent_changes_a_consent_with_a_reason(support_agent):
    customer = make_customer()
    assign(support_agent, customer)
    response = client_for(support_agent).post(
        f"/api/v1/customers/{customer.pk}/consents/",
        {
            "purpose": "marketing_sms",
            "granted": True,
            "reason": "Customer asked by phone",
        },
    )
    assert response.status_code == 200
    event = ConsentEvent.objects.get()
    assert (event.source, event.actor) == ("staff", support_agent)


def test_a_staff_change_without_assignment_is_404(support_agent):
    customer = make_customer()
    response = client_for(support_agent).post(
        f"/api/v1/customers/{customer.pk}/consents/",
        {
            "purpose": "marketing_sms",
            "granted": True,
            "reason": "Customer asked by phone",
        },
    )
    assert response.status_code == 404
    assert not ConsentEvent.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"purpose": "marketing_sms", "granted": True}, "reason"),
        (
            {"purpose": "nope", "granted": True, "reason": "a long enough reason"},
            "purpose",
        ),
        ({"purpose": "marketing_sms", "reason": "a long enough reason"}, "granted"),
    ],
)
def test_bad_staff_changes_get_400_naming_the_field(privacy_admin, body, field):
    customer = make_customer()
    response = client_for(privacy_admin).post(
        f"/api/v1/customers/{customer.pk}/consents/", body, format="json"
    )
    assert response.status_code == 400
    assert field in error_fields(response)
    assert not ConsentEvent.objects.exists()


def test_delivery_agents_may_not_change_consents(delivery_agent):
    customer = make_customer()
    assign(delivery_agent, customer)
    response = client_for(delivery_agent).post(
        f"/api/v1/customers/{customer.pk}/consents/",
        {"purpose": "marketing_sms", "granted": True, "reason": "a long enough reason"},
    )
    assert response.status_code == 403


@pytest.fixture
def mixed_audience():
    yes = make_customer()
    set_consent(yes, "marketing_sms")
    withdrawn = make_customer()
    set_consent(withdrawn, "marketing_sms")
    set_consent(withdrawn, "marketing_sms", granted=False)
    other_purpose = make_customer()
    set_consent(other_purpose, "analytics")
    never = make_customer()
    erased = make_customer()
    set_consent(erased, "marketing_sms")
    from apps.retention.services import customer_erase

    customer_erase(actor=None, customer=erased)
    return yes, [yes, withdrawn, other_purpose, never, erased]


def test_audience_for_given_ids_on_mixed_states(privacy_admin, mixed_audience):
    yes, everyone = mixed_audience
    response = client_for(privacy_admin).post(
        AUDIENCE,
        {"purpose": "marketing_sms", "customer_ids": [str(c.pk) for c in everyone]},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["allowed"] == [str(yes.pk)]


def test_audience_with_unsubscribe_urls(privacy_admin, mixed_audience):
    yes, everyone = mixed_audience
    body = (
        client_for(privacy_admin)
        .post(
            AUDIENCE,
            {
                "purpose": "marketing_sms",
                "customer_ids": [str(c.pk) for c in everyone],
                "include_unsubscribe": True,
            },
            format="json",
        )
        .json()
    )
    url = body["unsubscribe"][str(yes.pk)]
    token = url.rstrip("/").rsplit("/", 1)[-1]
    customer, purpose = unsubscribe_resolve(token=token)
    assert (customer.pk, purpose.code) == (yes.pk, "marketing_sms")


def test_audience_without_ids_is_400_pointing_at_the_csv(privacy_admin):
    response = client_for(privacy_admin).post(
        AUDIENCE, {"purpose": "marketing_sms"}, format="json"
    )
    assert response.status_code == 400
    assert error_code(response) == "required"
    [message] = error_fields(response)["customer_ids"]
    assert f"GET {AUDIENCE}marketing_sms.csv" in message


def test_audience_streams_a_csv_of_everyone_allowed(privacy_admin, mixed_audience):
    yes, _ = mixed_audience
    response = client_for(privacy_admin).get(f"{AUDIENCE}marketing_sms.csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [["customer_id"], [str(yes.pk)]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"purpose": "nope", "customer_ids": []}, "purpose"),
        ({"purpose": "marketing_sms", "customer_ids": ["not-a-uuid"]}, "customer_ids"),
        ({"purpose": "marketing_sms", "customer_ids": "x"}, "customer_ids"),
    ],
)
def test_audience_bad_input_is_400(privacy_admin, body, field):
    response = client_for(privacy_admin).post(AUDIENCE, body, format="json")
    assert response.status_code == 400
    assert field in error_fields(response)


def test_the_audience_csv_of_an_unknown_purpose_is_400(privacy_admin):
    response = client_for(privacy_admin).get(f"{AUDIENCE}nope.csv")
    assert response.status_code == 400
    assert error_fields(response) == {"purpose": ["Unknown purpose."]}


def test_audience_needs_the_role_or_the_permission():
    agent = UserFactory(username="marketing-system", role=Role.SUPPORT_AGENT)
    body = {"purpose": "marketing_sms", "customer_ids": []}
    assert client_for(agent).post(AUDIENCE, body, format="json").status_code == 403
    agent.user_permissions.add(Permission.objects.get(codename="query_audience"))
    agent = type(agent).objects.get(pk=agent.pk)  # fresh permission cache
    assert client_for(agent).post(AUDIENCE, body, format="json").status_code == 200


def test_the_audience_csv_answers_a_client_that_asks_for_csv(privacy_admin):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(privacy_admin)
    response = client.get(
        "/api/v1/consent/audience/marketing_sms.csv", HTTP_ACCEPT="text/csv"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert b"".join(response.streaming_content).startswith(b"customer_id\n")
    refused = client.get("/api/v1/consent/audience/nope.csv", HTTP_ACCEPT="text/csv")
    assert refused.status_code == 400
    assert refused["Content-Type"] == "application/json"
    assert refused.json()["errors"][0]["field"] == "purpose"
