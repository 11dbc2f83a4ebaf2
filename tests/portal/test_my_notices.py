"""The customer's "Notices about my data": their notices and their own remedy offer."""

import pytest
from django.contrib.messages import get_messages

from apps.customers.services import customer_language_set
from apps.incidents.models import AffectedCustomer
from apps.incidents.services import affected_select, notices_queue
from apps.incidents.tasks import notices_send_task
from tests.incidents.factories import make_incident
from tests.portal.factories import PASSWORD, make_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def offered(privacy_admin):
    """Two affected customers, each sent a notice with their own voucher code."""
    me = make_account(email="me@example.com")
    other = make_account(email="other@example.com")
    incident = make_incident(
        privacy_admin, remedy_kind="voucher", remedy_description="A 20% voucher"
    )
    affected_select(actor=privacy_admin, incident=incident, scope="all")
    notices_queue(actor=privacy_admin, incident=incident)
    notices_send_task.delay(str(incident.pk))
    return incident, me, other


def _code(incident, customer) -> str:
    return AffectedCustomer.objects.get(
        incident=incident, customer_id=customer.pk
    ).remedy_code


def test_the_page_offers_my_code_and_not_another_customers(client, offered):
    incident, me, other = offered
    client.post("/me/login/", {"email": "me@example.com", "password": PASSWORD})
    page = client.get("/me/notices/").content.decode()
    assert f"I used my offer (code {_code(incident, me)})" in page
    assert _code(incident, other) not in page


def test_redeeming_marks_only_my_offer(client, offered):
    incident, me, other = offered
    client.post("/me/login/", {"email": "me@example.com", "password": PASSWORD})
    response = client.post("/me/notices/", {"incident": str(incident.pk)})
    assert response.status_code == 302
    assert response["Location"] == "/me/notices/"
    assert [m.message for m in get_messages(response.wsgi_request)] == [
        "Marked as redeemed."
    ]
    redeemed = dict(
        AffectedCustomer.objects.filter(incident=incident).values_list(
            "customer_id", "remedy_redeemed_at"
        )
    )
    assert redeemed[me.pk] is not None
    assert redeemed[other.pk] is None
    assert "Offer redeemed on" in client.get("/me/notices/").content.decode()


def test_redeeming_twice_says_there_is_nothing_left(client, offered):
    incident, _, _ = offered
    client.post("/me/login/", {"email": "me@example.com", "password": PASSWORD})
    client.post("/me/notices/", {"incident": str(incident.pk)})
    response = client.post("/me/notices/", {"incident": str(incident.pk)})
    said = [m.message for m in get_messages(response.wsgi_request)]
    assert said[-1] == "There is no unredeemed offer here."


def test_a_notice_in_another_language_says_which_it_is_shown_in(client, offered):
    _incident, me, _other = offered
    client.post("/me/login/", {"email": "me@example.com", "password": PASSWORD})
    page = client.get("/me/notices/").content.decode()
    assert "Not written in your language" not in page  # sent in English, read so
    customer_language_set(customer=me, language="de")
    page = client.get("/me/notices/").content.decode()
    assert '<html lang="de"' in page
    assert "Nicht in Ihrer Sprache verfasst: angezeigt auf Englisch." in page
    assert '<article class="update" lang="en"' in page
