import json
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.consent.models import ConsentEvent, NoticeChange, PrivacyNotice, Purpose
from apps.consent.services import consent_record, notice_publish, unsubscribe_token
from apps.customers.services import customer_language_set
from tests.accounts.helpers import sign_in
from tests.portal.factories import PASSWORD, make_account

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer():
    return make_account()


@pytest.fixture
def signed_in(client, customer):
    response = client.post(
        reverse("portal:login"), {"email": "SITI@example.com ", "password": PASSWORD}
    )
    assert response.status_code == 302
    return client


def test_customers_sign_in_with_their_email(signed_in):
    page = signed_in.get(reverse("portal:consents"))
    assert page.status_code == 200
    assert "Marketing text messages" in page.content.decode()


@pytest.mark.parametrize(
    ("email", "password"),
    [("siti@example.com", "wrong-password-1"), ("nobody@example.com", PASSWORD)],
)
def test_sign_in_failure_does_not_say_which_part_was_wrong(
    client, customer, email, password
):
    response = client.post(
        reverse("portal:login"), {"email": email, "password": password}
    )
    assert response.status_code == 200
    assert "The email address or password is not right." in response.content.decode()


def test_axes_never_stores_the_email_address(client, customer):
    from axes.models import AccessAttempt

    client.post(
        reverse("portal:login"), {"email": "siti@example.com", "password": "nope"}
    )
    attempt = AccessAttempt.objects.get()
    assert "siti" not in attempt.username
    assert attempt.username.startswith("email:")


def test_staff_cannot_use_the_customer_pages(client, support_agent):
    sign_in(client, support_agent)
    assert client.get(reverse("portal:consents")).status_code == 403


def test_anonymous_visitors_are_sent_to_the_customer_sign_in(client):
    response = client.get(reverse("portal:consents"))
    assert response["Location"].startswith(reverse("portal:login"))


def test_one_click_switches_a_purpose_and_the_history_shows_it(signed_in, customer):
    url = reverse("portal:consent-toggle", args=["marketing_sms"])
    signed_in.post(url, {"granted": "1"})
    page = signed_in.get(reverse("portal:consents")).content.decode()
    assert 'aria-label="Marketing text messages: on, turn off"' in page
    signed_in.post(url, {"granted": "0"})
    page = signed_in.get(reverse("portal:consents")).content.decode()
    assert 'aria-label="Marketing text messages: off, turn on"' in page
    assert page.count("Self-service page") == 2
    assert (
        ConsentEvent.objects.filter(customer=customer, source="self_service").count()
        == 2
    )


def test_marketing_email_waits_for_the_confirmation_link(
    signed_in, customer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        signed_in.post(
            reverse("portal:consent-toggle", args=["marketing_email"]), {"granted": "1"}
        )
    page = signed_in.get(reverse("portal:consents")).content.decode()
    assert "Waiting for you to open the confirmation link" in page
    [message] = mail.outbox
    link = next(line for line in message.body.splitlines() if "/me/confirm/" in line)
    path = link.split("127.0.0.1:8000", 1)[1]
    anonymous = Client()
    assert "Yes, confirm" in anonymous.get(path).content.decode()
    assert "is now on" in anonymous.post(path).content.decode()
    page = signed_in.get(reverse("portal:consents")).content.decode()
    assert 'aria-label="Marketing emails: on, turn off"' in page


def test_receipts_download_as_json(signed_in, customer):
    signed_in.post(
        reverse("portal:consent-toggle", args=["analytics"]), {"granted": "1"}
    )
    response = signed_in.get(reverse("portal:receipts"))
    assert (
        response["Content-Disposition"]
        == 'attachment; filename="consent-receipts.json"'
    )
    receipts = json.loads(response.content)["receipts"]
    assert [(r["purpose"], r["decision"], r["source"]) for r in receipts] == [
        ("analytics", "granted", "self_service")
    ]


def test_gpc_withdraws_partner_sharing_and_the_page_says_so(signed_in, customer):
    consent_record(
        actor=None,
        customer=customer,
        purpose_code="partner_sharing",
        granted=True,
        source="self_service",
    )
    page = signed_in.get(reverse("portal:consents"), HTTP_SEC_GPC="1").content.decode()
    assert "Global Privacy Control signal, so we stopped sharing" in page
    assert ConsentEvent.objects.filter(source="gpc").count() == 1
    signed_in.get(reverse("portal:consents"), HTTP_SEC_GPC="1")
    assert ConsentEvent.objects.filter(source="gpc").count() == 1


def test_a_material_notice_is_reviewed_before_anything_else(signed_in, privacy_admin):
    notice = PrivacyNotice.objects.create(
        version=2,
        title="Notice",
        summary="New partner.",
        body="...",
        effective_at=timezone.now(),
    )
    NoticeChange.objects.create(
        notice=notice,
        purpose=Purpose.objects.get(code="partner_sharing"),
        material=True,
    )
    notice_publish(actor=privacy_admin, notice=notice)
    response = signed_in.get(reverse("portal:consents"))
    assert response["Location"] == reverse("portal:notice")
    assert (
        "needs your agreement again"
        in signed_in.get(reverse("portal:notice")).content.decode()
    )
    signed_in.post(reverse("portal:notice"))
    assert signed_in.get(reverse("portal:consents")).status_code == 200


def test_unsubscribe_get_shows_one_button_and_post_needs_no_csrf(customer):
    # The page is in the customer's language (tests/portal/test_languages.py).
    customer_language_set(customer=customer, language="en")
    consent_record(
        actor=None,
        customer=customer,
        purpose_code="marketing_sms",
        granted=True,
        source="api",
    )
    url = reverse(
        "unsubscribe",
        args=[unsubscribe_token(customer_id=customer.pk, purpose_code="marketing_sms")],
    )
    client = Client(enforce_csrf_checks=True)
    page = client.get(url).content.decode()
    assert "Stop receiving" in page
    # The unsubscribe form holds no token (the language switcher's form has one).
    assert '<form method="post"><button type="submit">Unsubscribe</button>' in page
    response = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    again = client.post(url, {"List-Unsubscribe": "One-Click"})
    assert "already unsubscribed" in again.content.decode()
    assert ConsentEvent.objects.filter(source="unsubscribe_link").count() == 1


def test_a_tampered_unsubscribe_link_shows_a_clear_page_and_changes_nothing(customer):
    token = unsubscribe_token(customer_id=customer.pk, purpose_code="marketing_sms")
    response = Client().post(reverse("unsubscribe", args=[token[:-2] + "xx"]))
    assert response.status_code == 400
    assert "This link is not valid" in response.content.decode()
    assert not ConsentEvent.objects.exists()


def test_password_reset_emails_the_address_on_the_encrypted_record(
    client, customer, settings
):
    response = client.post(
        reverse("portal:password-reset"), {"email": "siti@example.com"}
    )
    assert response.status_code == 302
    [message] = mail.outbox
    assert message.to == ["siti@example.com"]
    link = next(word for word in message.body.split() if "/me/reset/" in word)
    assert link.startswith(settings.AMANAH_PUBLIC_URL.rstrip("/") + "/me/reset/")
    page = client.get(urlsplit(link).path, follow=True)
    assert "Choose a new password" in page.content.decode()

    client.post(reverse("portal:password-reset"), {"email": "unknown@example.com"})
    assert (
        len(mail.outbox) == 1
    )  # same page, no mail, nothing says the address is unknown


def test_a_switchs_confirmation_is_shown_once_next_to_its_switch(signed_in):
    response = signed_in.post(
        reverse("portal:consent-toggle", args=["analytics"]),
        {"granted": "1"},
        follow=True,
    )
    page = response.content.decode()
    assert page.count("Product analytics is now on.") == 1
    top = page.split('<ul class="messages">', 1)[1].split("</ul>", 1)[0]
    assert "is now on" not in top


def test_a_switchs_confirmation_on_a_page_without_the_switch_is_at_the_top(
    signed_in,
):
    """Landing elsewhere (the notice to review first, another page), it is not lost."""
    signed_in.post(
        reverse("portal:consent-toggle", args=["analytics"]), {"granted": "1"}
    )
    page = signed_in.get(reverse("portal:data")).content.decode()
    top = page.split('<ul class="messages">', 1)[1].split("</ul>", 1)[0]
    assert "Product analytics is now on." in top


def _ask_for_marketing_emails(signed_in, granted="1"):
    signed_in.post(
        reverse("portal:consent-toggle", args=["marketing_email"]), {"granted": granted}
    )


def _confirmation_paths():
    """The paths of the confirmation links sent so far."""
    return [
        next(w for w in m.body.split() if "/me/confirm/" in w).split(
            "127.0.0.1:8000", 1
        )[1]
        for m in mail.outbox
    ]


def test_an_older_link_after_a_newer_one_confirmed_says_so_without_a_button(
    signed_in, customer, django_capture_on_commit_callbacks
):
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            _ask_for_marketing_emails(signed_in)
    older, newer = _confirmation_paths()
    anonymous = Client()
    assert "is now on" in anonymous.post(newer).content.decode()
    for response in (anonymous.get(older), anonymous.post(older)):
        page = response.content.decode()
        assert "You confirmed this choice with a newer link" in page
        assert "Yes, confirm" not in page
        assert "expired" not in page


def test_a_replaced_expired_link_says_it_was_replaced_without_a_button(
    signed_in, customer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _ask_for_marketing_emails(signed_in)
    [older] = _confirmation_paths()
    # Turned off (the pending link is cancelled), then asked for again.
    _ask_for_marketing_emails(signed_in, granted="")
    with django_capture_on_commit_callbacks(execute=True):
        _ask_for_marketing_emails(signed_in)
    page = Client().get(older).content.decode()
    assert "A newer confirmation link was sent after this one" in page
    assert "Yes, confirm" not in page
