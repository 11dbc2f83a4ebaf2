"""Which language the customer's pages are in, and the switcher
(apps/portal/language.py).

The Indonesian strings checked here are in locale/id/LC_MESSAGES/django.po, compiled by
`make setup` (which `make test` runs first)."""

from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.urls import reverse

from apps.access.models import AccessLogEntry
from apps.customers.services import customer_language_set
from tests.accounts.helpers import sign_in
from tests.portal.factories import PASSWORD, make_account

pytestmark = pytest.mark.django_db

CONSENTS = reverse("portal:consents")


@pytest.fixture
def customer():
    return make_account()


def post_sign_in(client, **headers):
    response = client.post(
        reverse("portal:login"),
        {"email": "siti@example.com", "password": PASSWORD},
        **headers,
    )
    assert response.status_code == 302
    return client


def test_the_browser_language_is_used_when_nothing_was_chosen(client, customer):
    post_sign_in(client)
    page = client.get(CONSENTS, HTTP_ACCEPT_LANGUAGE="id").content.decode()
    assert '<html lang="id" dir="ltr">' in page
    assert "<h1>Persetujuan saya</h1>" in page


def test_the_saved_choice_beats_the_browser(client, customer):
    customer_language_set(customer=customer, language="id")
    post_sign_in(client, HTTP_ACCEPT_LANGUAGE="de")
    page = client.get(CONSENTS, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert '<html lang="id"' in page
    assert "<h1>Persetujuan saya</h1>" in page


def test_a_choice_saved_after_signing_in_applies_from_the_next_page(client, customer):
    sign_in(client, customer.user)
    assert "<h1>My consents</h1>" in client.get(CONSENTS).content.decode()
    customer_language_set(customer=customer, language="id")
    page = client.get(CONSENTS, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<h1>Persetujuan saya</h1>" in page


def test_the_cookie_beats_the_browser_for_a_signed_out_visitor(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "id"
    page = client.get(reverse("portal:login"), HTTP_ACCEPT_LANGUAGE="de")
    assert '<html lang="id"' in page.content.decode()


def test_the_switcher_is_on_customer_pages_and_posts_with_csrf(client, customer):
    page = client.get(reverse("portal:login")).content.decode()
    assert f'action="{reverse("portal:language")}"' in page
    assert 'name="language" value="fa" lang="fa"' in page
    assert "فارسی" in page  # each language named in itself
    post_sign_in(client)
    page = client.get(CONSENTS).content.decode()
    form = page.split(f'action="{reverse("portal:language")}"', 1)[1].split("</form>")[
        0
    ]
    assert "csrfmiddlewaretoken" in form
    assert f'name="next" value="{CONSENTS}"' in form


def test_switching_saves_the_choice_sets_the_cookie_and_goes_back(client, customer):
    post_sign_in(client)
    data = reverse("portal:data")
    response = client.post(reverse("portal:language"), {"language": "id", "next": data})
    assert response.status_code == 302
    assert response["Location"] == data
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "id"
    customer.refresh_from_db()
    assert customer.language == "id"
    page = client.get(data, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<h1>Data saya</h1>" in page


def test_switching_signed_out_sets_only_the_cookie(client):
    response = client.post(
        reverse("portal:language"), {"language": "id", "next": reverse("portal:login")}
    )
    assert response["Location"] == reverse("portal:login")
    assert response.cookies[settings.LANGUAGE_COOKIE_NAME].value == "id"
    page = client.get(reverse("portal:login")).content.decode()
    assert "<h1>Halaman privasi Anda</h1>" in page


@pytest.mark.parametrize("code", ["xx", "", "en-GB'><script>"])
def test_switching_to_a_language_not_offered_is_refused(client, customer, code):
    post_sign_in(client)
    response = client.post(reverse("portal:language"), {"language": code})
    assert response.status_code == 400
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    customer.refresh_from_db()
    assert customer.language == ""


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/me/", "javascript:alert(1)"]
)
def test_switching_never_sends_the_customer_elsewhere(client, target):
    response = client.post(
        reverse("portal:language"), {"language": "de", "next": target}
    )
    assert response.status_code == 302
    assert response["Location"] == CONSENTS


def test_persian_pages_are_right_to_left(client, customer):
    post_sign_in(client)
    client.post(reverse("portal:language"), {"language": "fa"})
    page = client.get(CONSENTS).content.decode()
    assert '<html lang="fa" dir="rtl">' in page


def test_staff_pages_stay_english_whatever_the_browser_says(client, support_agent):
    sign_in(client, support_agent)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fa"
    page = client.get("/", HTTP_ACCEPT_LANGUAGE="fa").content.decode()
    assert '<html lang="en" dir="ltr">' in page
    assert f'action="{reverse("portal:language")}"' not in page


def test_who_looked_is_in_the_language_s_date_format(client, customer, support_agent):
    AccessLogEntry.objects.create(
        staff=support_agent,
        staff_role="support_agent",
        customer=customer,
        fields={"email": "masked"},
        purpose="support_case",
        created_at=datetime(2026, 12, 1, 16, 44, tzinfo=UTC),
    )
    post_sign_in(client)
    english = client.get(reverse("portal:data")).content.decode()
    assert "2026-12-0116:44" not in english
    assert "<td>12/01/2026 4:44 p.m.</td>" in english
    assert "A support agent" in english
    client.post(reverse("portal:language"), {"language": "id"})
    indonesian = client.get(reverse("portal:data")).content.decode()
    assert "<td>01-12-2026 16.44</td>" in indonesian
    assert "Petugas layanan pelanggan" in indonesian
    assert "untuk kasus layanan pelanggan Anda" in indonesian


def test_the_switch_confirmation_is_in_the_customer_s_language(client, customer):
    post_sign_in(client)
    client.post(reverse("portal:language"), {"language": "id"})
    response = client.post(
        reverse("portal:consent-toggle", args=["analytics"]),
        {"granted": "1"},
        follow=True,
    )
    page = response.content.decode()
    assert response.redirect_chain == [(CONSENTS + "#purpose-analytics", 302)]
    # Next to the switch it is about (the purpose's name: whole in one language).
    purpose = page.split('id="purpose-analytics"', 1)[1].split("</li>")[0]
    assert 'class="message success" role="status" lang="id">' in purpose
    assert " sekarang aktif.</p>" in purpose


def test_the_password_reset_email_is_in_the_saved_language(client, customer):
    from django.core import mail

    customer_language_set(customer=customer, language="id")
    client.post(
        reverse("portal:password-reset"),
        {"email": "siti@example.com"},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    [message] = mail.outbox
    assert message.subject == "Atur ulang kata sandi Amanah Anda"
