"""What the customer's pages promise, checked against what happens."""

import pytest
from django.test import Client
from django.urls import reverse

from apps.consent.models import ConsentState
from apps.consent.services import consent_record, unsubscribe_token
from apps.customers.services import customer_language_set
from tests.portal.factories import PASSWORD, make_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer():
    return make_account()


@pytest.fixture
def signed_in(client, customer):
    client.post(
        reverse("portal:login"), {"email": "siti@example.com", "password": PASSWORD}
    )
    return client


def test_the_gpc_note_says_when_gpc_turns_sharing_off(signed_in, customer):
    page = signed_in.get(reverse("portal:consents"), HTTP_SEC_GPC="1").content.decode()
    assert (
        "The first time we see it while sharing with partners is on, we turn that "
        "sharing off. If it is turned on again after that, it stays on."
    ) in page
    signed_in.post(
        reverse("portal:consent-toggle", args=["partner_sharing"]),
        {"granted": "1"},
        HTTP_SEC_GPC="1",
    )
    signed_in.get(reverse("portal:consents"), HTTP_SEC_GPC="1")  # first seen on
    state = ConsentState.objects.get(customer=customer, purpose__code="partner_sharing")
    assert not state.granted
    signed_in.post(
        reverse("portal:consent-toggle", args=["partner_sharing"]),
        {"granted": "1"},
        HTTP_SEC_GPC="1",
    )
    signed_in.get(reverse("portal:consents"), HTTP_SEC_GPC="1")
    state.refresh_from_db()
    assert state.granted  # on again after that: it stays on


def test_the_consents_page_says_marketing_emails_wait_for_confirmation(signed_in):
    page = " ".join(signed_in.get(reverse("portal:consents")).content.decode().split())
    assert (
        "Each switch takes effect at once, except that turning on some, such as "
        "marketing emails, waits until you confirm by a link we email you."
    ) in page


def test_the_history_names_the_configured_zone(signed_in, settings):
    settings.TIME_ZONE = "Asia/Jakarta"
    page = signed_in.get(reverse("portal:consents")).content.decode()
    assert "When (Asia/Jakarta)" in page
    assert "UTC" not in page


@pytest.mark.parametrize(
    ("purpose", "said"),
    [
        (
            "marketing_sms",
            "You will not get marketing text messages from us any more; a message "
            "already on its way may still arrive.",
        ),
        ("analytics", "We no longer use your data for product analytics."),
    ],
)
def test_unsubscribe_says_what_stops(customer, purpose, said):
    customer_language_set(customer=customer, language="en")  # the page is in theirs
    consent_record(
        actor=None, customer=customer, purpose_code=purpose, granted=True, source="api"
    )
    url = reverse(
        "unsubscribe",
        args=[unsubscribe_token(customer_id=customer.pk, purpose_code=purpose)],
    )
    response = Client().post(url, {"List-Unsubscribe": "One-Click"})
    assert said in response.content.decode()
