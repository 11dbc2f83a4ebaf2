"""The sign-in and security page is shared: a customer reads it in their language,
staff in English (whatever their browser asks)."""

import pytest
from django.urls import reverse
from django.utils import translation

from apps.accounts.models import Role
from tests.accounts.factories import UserFactory
from tests.portal.factories import make_account

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _language_restored():
    """A page request leaves its language active: give the next test English."""
    with translation.override("en"):
        yield


def _german(msgid: str) -> str:
    with translation.override("de"):
        said = translation.gettext(msgid)
    assert said != msgid
    return said


def test_a_customer_reads_the_security_page_in_their_language(client):
    client.force_login(make_account(email="anna@example.com").user)
    html = client.get(
        reverse("accounts:security"), HTTP_ACCEPT_LANGUAGE="de"
    ).content.decode()
    assert '<html lang="de"' in html
    for msgid in ("Sign-in and security", "Two-step sign-in", "Sign out everywhere"):
        assert _german(msgid) in html
    for english in ("Two-step sign-in", "Sign out everywhere", "without activity"):
        assert english not in html


def test_signing_out_everywhere_says_so_in_the_customers_language(client):
    client.force_login(make_account(email="anna@example.com").user)
    response = client.post(
        reverse("accounts:security"),
        {"action": "sign_out_everywhere"},
        HTTP_ACCEPT_LANGUAGE="de",
        follow=True,
    )
    assert _german("You are signed out on every device.") in response.content.decode()


def test_staff_read_the_security_page_in_english(client):
    client.force_login(UserFactory(role=Role.SUPPORT_AGENT))
    html = client.get(
        reverse("accounts:security"), HTTP_ACCEPT_LANGUAGE="de"
    ).content.decode()
    assert "<h1>Sign-in and security</h1>" in html
    assert _german("Two-step sign-in") not in html
