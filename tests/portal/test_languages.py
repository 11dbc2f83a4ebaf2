"""Which language the customer's pages are in, and the switcher
(apps/portal/language.py).

The Indonesian strings checked here are in locale/id/LC_MESSAGES/django.po, compiled by
`make setup` (which `make test` runs first)."""

from datetime import UTC, datetime

import pytest
from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from apps.access.models import AccessLogEntry
from apps.consent.services import OPT_IN_SALT
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
    assert ">12/01/2026 4:44 p.m.</td>" in english
    assert "A support agent" in english
    client.post(reverse("portal:language"), {"language": "id"})
    indonesian = client.get(reverse("portal:data")).content.decode()
    assert ">01-12-2026 16.44</td>" in indonesian
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


# Pages an email links to: in the language the email was written in ------------------


def _unsubscribe_url(customer):
    from apps.consent.services import consent_record, unsubscribe_token

    consent_record(
        actor=None,
        customer=customer,
        purpose_code="analytics",
        granted=True,
        source="api",
    )
    token = unsubscribe_token(customer_id=customer.pk, purpose_code="analytics")
    return reverse("unsubscribe", args=[token])


def _opt_in_url(customer):
    from apps.consent.models import Purpose
    from apps.consent.services import opt_in_request

    opt_in = opt_in_request(
        customer=customer, purpose=Purpose.objects.get(code="marketing_sms")
    )
    return opt_in, reverse(
        "portal:opt-in-confirm",
        args=[signing.dumps(opt_in.pk, salt=OPT_IN_SALT)],
    )


def test_the_unsubscribe_page_is_in_the_saved_language(client, customer):
    customer_language_set(customer=customer, language="id")
    url = _unsubscribe_url(customer)
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert '<html lang="id"' in page
    done = client.post(url, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert '<html lang="id"' in done


def test_the_unsubscribe_page_without_a_saved_language_is_the_countrys(client):
    jonas = make_account(email="jonas@example.com", country="DE", region="")
    page = client.get(_unsubscribe_url(jonas), HTTP_ACCEPT_LANGUAGE="en")
    assert '<html lang="de"' in page.content.decode()


def test_the_visitors_own_choice_beats_the_saved_language(client, customer):
    customer_language_set(customer=customer, language="id")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fa"
    page = client.get(_unsubscribe_url(customer), HTTP_ACCEPT_LANGUAGE="de")
    assert '<html lang="fa" dir="rtl"' in page.content.decode()


def test_a_link_that_is_not_valid_is_in_the_browsers_language(client):
    page = client.get(
        reverse("unsubscribe", args=["tampered"]), HTTP_ACCEPT_LANGUAGE="de"
    )
    assert '<html lang="de"' in page.content.decode()


def test_the_confirmation_page_is_in_the_saved_language(client, customer):
    customer_language_set(customer=customer, language="id")
    opt_in, url = _opt_in_url(customer)
    page = client.get(url, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert '<html lang="id"' in page
    done = client.post(url, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert '<html lang="id"' in done
    opt_in.refresh_from_db()
    assert opt_in.confirmed_at is not None


def test_the_confirmation_page_is_in_the_language_its_email_was_written_in(
    django_capture_on_commit_callbacks,
):
    """Nothing saved, asked from a German page: the email is German (the language
    asked in beats the country's), and so is the page its link opens."""
    import re

    from django.core import mail
    from django.test import Client
    from django.utils import translation

    from apps.consent.services import consent_grant

    budi = make_account(email="budi@example.com", country="ID", region="")
    with translation.override("de"), django_capture_on_commit_callbacks(execute=True):
        consent_grant(
            actor=budi.user,
            customer=budi,
            purpose_code="marketing_email",
            source="self_service",
        )
    path = re.search(r"https?://[^/]+(/me/confirm/[^/\s]+/)", mail.outbox[0].body)[1]
    page = Client().get(path, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="de"' in page


def test_the_language_picked_before_signing_in_becomes_the_saved_choice(
    client, customer
):
    customer_language_set(customer=customer, language="fa")
    client.post(reverse("portal:language"), {"language": "en", "next": "/me/login/"})
    post_sign_in(client, HTTP_ACCEPT_LANGUAGE="fa")
    page = client.get(CONSENTS, HTTP_ACCEPT_LANGUAGE="fa").content.decode()
    assert '<html lang="en"' in page
    customer.refresh_from_db()
    assert customer.language == "en"


def test_without_a_pick_before_signing_in_the_saved_choice_stays(client, customer):
    customer_language_set(customer=customer, language="fa")
    post_sign_in(client, HTTP_ACCEPT_LANGUAGE="de")
    customer.refresh_from_db()
    assert customer.language == "fa"


def test_my_data_marks_the_english_descriptions_in_another_language(client, customer):
    from apps.inventory.models import System

    customer_language_set(customer=customer, language="de")
    post_sign_in(client)
    page = client.get(reverse("portal:data")).content.decode()
    system = System.objects.filter(active=True).exclude(description="").first()
    assert f'<span lang="en">{system.description}</span>' in page
    note = "are shown in English."
    with translation.override("de"):
        german = gettext(
            "Our descriptions of where your data is kept and who receives it "
            "are shown in English."
        )
    assert note not in german  # translated, so the check below means it
    assert german in page
    customer_language_set(customer=customer, language="en")
    page = client.get(reverse("portal:data")).content.decode()
    assert '<span lang="en">' not in page
    assert "are shown in English" not in page
