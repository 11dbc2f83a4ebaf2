"""Side doors through links (issue #15): every link an email carries is absolute and
on AMANAH_PUBLIC_URL, whatever Host header the request that caused it had; and a
one-time token never travels in `next=` or any other URL a redirect hands on."""

import re
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import mail
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.selectors import otp_current_code
from apps.consent.services import (
    consent_grant,
    notice_publish,
    unsubscribe_headers,
)
from apps.incidents.services import affected_select, notices_queue, notices_send_batch
from apps.monitoring.services import alert_raise
from apps.requests.services import request_open
from tests.consent.factories import consent_answer, notice_changing
from tests.incidents.factories import make_incident
from tests.inventory.factories import partner_save
from tests.monitoring.factories import NOON, hit
from tests.portal.factories import PASSWORD, make_account

pytestmark = pytest.mark.django_db

PUBLIC = "https://public.amanah.example"
# An address Django accepts (it is in ALLOWED_HOSTS) that is not the public one: a
# link built from the request would point here.
OTHER_HOST = "internal.amanah.example"
ABSOLUTE = re.compile(r"https?://[^\s<>\"']+")
# A site path written without its origin: no mail client can open it.
RELATIVE = re.compile(r"(?:^|[\s(:<])/(?:me|u|compliance|staff|accounts|api)/")


@pytest.fixture(autouse=True)
def _public_url(settings):
    settings.AMANAH_PUBLIC_URL = PUBLIC + "/"  # the trailing slash is no double one
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, OTHER_HOST]


# Every email the product sends, each returning the messages it caused.


def _opt_in(privacy_admin, capture) -> None:
    customer = make_account(email="opt-in@example.com")
    with capture(execute=True):
        consent_grant(
            actor=None,
            customer=customer,
            purpose_code="marketing_email",
            source="self_service",
        )


def _password_reset(privacy_admin, capture) -> None:
    make_account(email="reset@example.com")
    response = Client(HTTP_HOST=OTHER_HOST).post(
        "/me/password-reset/", {"email": "reset@example.com"}
    )
    assert response.status_code == 302


def _export_ready(privacy_admin, capture) -> None:
    customer = make_account(email="export@example.com")
    with capture(execute=True):
        request_open(actor=customer.user, customer=customer, kind="access")


def _privacy_notice_change(privacy_admin, capture) -> None:
    customer = make_account(email="notice@example.com")
    consent_answer(customer, "analytics")
    notice = notice_changing(
        "analytics",
        "We measure less.",
        description="Analytics keeps 6 months instead of 12.",
    )
    with capture(execute=True):
        notice_publish(actor=privacy_admin, notice=notice)


def _recipient_change(privacy_admin, capture) -> None:
    customer = make_account(email="partner@example.com")
    consent_answer(customer, "partner_sharing")
    with capture(execute=True):
        partner_save(privacy_admin, country="US")


def _breach_notice(privacy_admin, capture) -> None:
    customer = make_account(email="breach@example.com")
    incident = make_incident(privacy_admin)
    affected_select(
        actor=privacy_admin,
        incident=incident,
        scope="list",
        customer_ids=str(customer.pk),
    )
    notices_queue(actor=privacy_admin, incident=incident)
    notices_send_batch(incident_id=incident.pk)


def _alert(privacy_admin, capture) -> None:
    with capture(execute=True):
        alert_raise(hit=hit(staff_id=None), now=NOON)


# (the email, whether it must carry a link back to the site)
EMAILS: list[tuple[Callable, bool]] = [
    (_opt_in, True),
    (_password_reset, True),
    (_export_ready, True),
    (_privacy_notice_change, True),
    (_recipient_change, True),
    # A breach notice carries no link: one that asks nobody to click is harder to
    # imitate (customers also read it under /me/notices/).
    (_breach_notice, False),
    (_alert, True),
]


@pytest.mark.parametrize(
    ("send", "has_link"), EMAILS, ids=[f.__name__.strip("_") for f, _ in EMAILS]
)
def test_every_link_in_every_email_starts_with_the_public_url(
    send, has_link, privacy_admin, settings, django_capture_on_commit_callbacks
):
    settings.AMANAH_ALERT_EMAILS = ["soc@amanah.example"]
    send(privacy_admin, django_capture_on_commit_callbacks)
    assert mail.outbox, "no email was sent"
    for message in mail.outbox:
        text = "\n".join(
            [message.subject, message.body, *map(str, message.extra_headers.values())]
        )
        links = ABSOLUTE.findall(text)
        assert all(link.startswith(PUBLIC + "/") for link in links), links
        assert "//" not in "".join(link[len(PUBLIC) :] for link in links), links
        assert not RELATIVE.search(ABSOLUTE.sub("", text)), message.body
        if has_link:
            assert links, message.body
        else:
            assert not links, message.body


def test_the_password_reset_link_ignores_the_host_the_request_came_to(
    django_capture_on_commit_callbacks,
):
    make_account(email="reset@example.com")
    Client(HTTP_HOST=OTHER_HOST).post(
        "/me/password-reset/", {"email": "reset@example.com"}
    )
    [message] = mail.outbox
    [link] = ABSOLUTE.findall(message.body)
    assert link.startswith(f"{PUBLIC}/me/reset/")
    assert OTHER_HOST not in message.body


def test_the_export_ready_email_holds_an_absolute_link(
    django_capture_on_commit_callbacks,
):
    customer = make_account(email="export@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        request_open(actor=customer.user, customer=customer, kind="access")
    [message] = mail.outbox
    [link] = ABSOLUTE.findall(message.body)
    assert link.startswith(f"{PUBLIC}/me/data/download/")


def test_unsubscribe_links_start_with_the_public_url(db):
    customer = make_account(email="unsubscribe@example.com")
    headers = unsubscribe_headers(customer_id=customer.pk, purpose_code="analytics")
    assert headers["List-Unsubscribe"].startswith(f"<{PUBLIC}/u/")


# No token in next= ------------------------------------------------------------------


def _export_link(customer, capture) -> str:
    """The path of the download link the export-ready email carries."""
    with capture(execute=True):
        request_open(actor=customer.user, customer=customer, kind="access")
    [message] = mail.outbox
    link = next(word for word in message.body.split() if "/me/data/download/" in word)
    return urlsplit(link).path


def _token_of(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _follow(client: Client, response, token: str, *, limit: int = 10):
    """Follow redirects by hand, checking that no URL handed on holds the token."""
    for _ in range(limit):
        if response.status_code not in (301, 302, 303, 307, 308):
            return response
        location = response["Location"]
        assert token not in location, location
        response = client.get(location)
    raise AssertionError("too many redirects")


def test_a_signed_out_export_link_keeps_its_token_out_of_every_url(
    django_capture_on_commit_callbacks,
):
    customer = make_account(email="export@example.com")
    path = _export_link(customer, django_capture_on_commit_callbacks)
    token = _token_of(path)
    client = Client()

    first = client.get(path)
    assert first.status_code == 302
    assert token not in first["Location"]
    login = _follow(client, first, token)
    assert login.status_code == 200
    assert token not in login.content.decode()  # nor in the sign-in page's form
    next_url = parse_qs(login.request.get("QUERY_STRING", "")).get("next", [""])[0]
    assert next_url

    signed_in = client.post(
        login.request["PATH_INFO"] + "?" + login.request["QUERY_STRING"],
        {"email": "export@example.com", "password": PASSWORD, "next": next_url},
    )
    download = _download_from_the_page_signing_in_came_back_to(
        client, _follow(client, signed_in, token)
    )
    assert download.content[:2] == b"PK"


def test_a_customer_owing_a_second_factor_keeps_the_token_out_of_next(
    django_capture_on_commit_callbacks,
):
    customer = make_account(email="export@example.com")
    device = TOTPDevice.objects.create(user=customer.user, name="app", confirmed=True)
    path = _export_link(customer, django_capture_on_commit_callbacks)
    token = _token_of(path)
    client = Client()
    client.force_login(customer.user)  # the password, not yet the second factor

    verify = _follow(client, client.get(path), token)
    assert verify.status_code == 200
    next_url = parse_qs(verify.request.get("QUERY_STRING", "")).get("next", [""])[0]
    assert next_url
    assert token not in next_url
    done = client.post(
        verify.request["PATH_INFO"] + "?" + verify.request["QUERY_STRING"],
        {"otp_token": otp_current_code(user=device.user), "next": next_url},
    )
    _download_from_the_page_signing_in_came_back_to(
        client, _follow(client, done, token)
    )


def _download_from_the_page_signing_in_came_back_to(client: Client, page):
    """Sign-in comes back to a page (not a download, which would leave the browser on
    the sign-in form) whose button downloads."""
    assert page.status_code == 200
    assert page.request["PATH_INFO"] == reverse("portal:request-download-pending")
    html = page.content.decode()
    assert "Download my data" in html
    assert 'method="post"' in html
    download = client.post(page.request["PATH_INFO"])
    assert download.status_code == 200
    assert download["Content-Type"] == "application/zip"
    return download


def test_the_stashed_token_works_once_and_only_for_its_customer(
    django_capture_on_commit_callbacks,
):
    me = make_account(email="export@example.com")
    make_account(email="other@example.com")
    path = _export_link(me, django_capture_on_commit_callbacks)
    client = Client()
    login = client.get(path, follow=True)
    # Someone else signs in on the same browser: the link is not theirs.
    response = client.post(
        login.request["PATH_INFO"] + "?" + login.request["QUERY_STRING"],
        {"email": "other@example.com", "password": PASSWORD},
        follow=True,
    )
    response = client.post(response.request["PATH_INFO"], follow=True)
    assert response.status_code == 200
    assert response.get("Content-Type", "").startswith("text/html")
    assert "This download link is not valid." in response.content.decode()


def _token_routes() -> list[str]:
    """Every URL pattern that takes a token, as a path with a recognisable one."""
    found = []

    def walk(patterns, prefix: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route)
            elif isinstance(p, URLPattern) and "<" in route and "token>" in route:
                path = re.sub(r"<(?:\w+:)?token>", "SeCrEtToKeN-0123456789", route)
                path = re.sub(r"<(?:\w+:)?\w+>", "MQ", path)
                found.append("/" + path.lstrip("^").rstrip("$"))

    walk(get_resolver().url_patterns, "")
    return found


@pytest.mark.parametrize("who", ["signed_out", "owing_a_second_factor"])
def test_no_url_with_a_token_hands_it_on_in_a_redirect(who):
    routes = _token_routes()
    assert "/me/data/download/SeCrEtToKeN-0123456789/" in routes
    assert "/u/SeCrEtToKeN-0123456789/" in routes
    client = Client()
    if who == "owing_a_second_factor":
        customer = make_account(email="owing@example.com")
        TOTPDevice.objects.create(user=customer.user, name="app", confirmed=True)
        client.force_login(customer.user)
    for path in routes:
        response = client.get(path)
        if response.status_code in (301, 302, 303, 307, 308):
            assert "SeCrEtToKeN" not in response["Location"], (path, response)


def test_a_stashed_token_expires_with_the_link(
    django_capture_on_commit_callbacks, monkeypatch
):
    me = make_account(email="export@example.com")
    path = _export_link(me, django_capture_on_commit_callbacks)
    client = Client()
    login = client.get(path, follow=True)
    later = timezone.now() + timedelta(hours=25)
    monkeypatch.setattr("time.time", lambda: later.timestamp())
    response = client.post(
        login.request["PATH_INFO"] + "?" + login.request["QUERY_STRING"],
        {"email": "export@example.com", "password": PASSWORD},
        follow=True,
    )
    response = client.post(response.request["PATH_INFO"], follow=True)
    assert "This download link has expired" in response.content.decode()


def test_a_post_to_a_download_link_is_refused_not_an_error(
    django_capture_on_commit_callbacks,
):
    customer = make_account(email="export@example.com")
    path = _export_link(customer, django_capture_on_commit_callbacks)
    client = Client()
    client.force_login(customer.user)
    assert client.post(path).status_code == 405
    assert client.get(path)["Content-Type"] == "application/zip"  # still unused
