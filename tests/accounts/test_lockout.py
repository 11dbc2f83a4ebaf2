"""Sign-in lockout (django-axes): failures lock the username; an address only after
AMANAH_ADDRESS_FAILURE_LIMIT failures; a locked sign-in says so and when to try again,
on the pages and on the API, the same whether or not the username exists."""

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tests.accounts.factories import PASSWORD, UserFactory
from tests.portal.factories import PASSWORD as CUSTOMER_PASSWORD
from tests.portal.factories import make_account

pytestmark = pytest.mark.django_db

LOGIN = reverse("accounts:login")
CUSTOMER_LOGIN = reverse("portal:login")
TOKEN = "/api/v1/auth/token/"
OFFICE = "198.51.100.7"  # one NAT address for a whole office


def _fail(client, username: str, times: int = 1):
    for _ in range(times):
        response = client.post(LOGIN, {"username": username, "password": "wrong"})
    return response


def _age_failures(minutes: int) -> None:
    """As if every recorded failure had happened `minutes` earlier."""
    AccessAttempt.objects.update(
        attempt_time=timezone.now() - timedelta(minutes=minutes)
    )


@pytest.mark.parametrize("target", ["support", "ghost"], ids=["real", "made-up"])
def test_a_colleague_at_the_same_address_signs_in_after_six_failures(
    support_agent, target
):
    UserFactory(username="colleague")
    stranger = Client(REMOTE_ADDR=OFFICE)
    assert _fail(stranger, target, times=6).status_code == 429

    colleague = Client(REMOTE_ADDR=OFFICE)
    response = colleague.post(LOGIN, {"username": "colleague", "password": PASSWORD})
    assert response.status_code == 302


def test_six_failures_with_made_up_usernames_lock_no_one_else(support_agent):
    stranger = Client(REMOTE_ADDR=OFFICE)
    for n in range(6):
        assert _fail(stranger, f"ghost{n}").status_code == 200

    response = Client(REMOTE_ADDR=OFFICE).post(
        LOGIN, {"username": "support", "password": PASSWORD}
    )
    assert response.status_code == 302


def test_the_locked_username_stays_locked_from_every_address(support_agent):
    _fail(Client(REMOTE_ADDR="203.0.113.1"), "support", times=6)
    elsewhere = Client(REMOTE_ADDR="203.0.113.2")
    response = elsewhere.post(LOGIN, {"username": "support", "password": PASSWORD})
    assert response.status_code == 429


def test_the_address_locks_at_its_own_limit(support_agent, settings):
    settings.AMANAH_ADDRESS_FAILURE_LIMIT = 10
    sprayer = Client(REMOTE_ADDR=OFFICE)
    for n in range(9):
        assert _fail(sprayer, f"guess{n}").status_code == 200
    colleague = Client(REMOTE_ADDR=OFFICE)
    assert (
        colleague.post(LOGIN, {"username": "support", "password": PASSWORD}).status_code
        == 302
    )
    colleague.post(reverse("accounts:logout"))

    tenth = _fail(sprayer, "guess9")
    assert tenth.status_code == 429
    locked = colleague.post(LOGIN, {"username": "support", "password": PASSWORD})
    assert locked.status_code == 429
    assert locked.content == tenth.content

    elsewhere = Client(REMOTE_ADDR="203.0.113.9")
    assert (
        elsewhere.post(LOGIN, {"username": "support", "password": PASSWORD}).status_code
        == 302
    )


def test_the_default_address_limit_is_far_above_the_username_limit(settings):
    assert settings.AMANAH_ADDRESS_FAILURE_LIMIT == 100
    assert settings.AXES_FAILURE_LIMIT == 6


def test_the_page_says_it_is_locked_and_when_to_try_again(support_agent):
    response = _fail(Client(), "support", times=6)
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    page = response.content.decode()
    assert "Too many failed sign-ins" in page
    assert "Try again in 15 minutes" in page


def test_trying_early_does_not_move_the_time_the_page_gave(support_agent):
    client = Client()
    _fail(client, "support", times=6)
    _age_failures(10)

    early = client.post(LOGIN, {"username": "support", "password": PASSWORD})
    assert early.status_code == 429
    assert "Try again in 5 minutes" in early.content.decode()
    assert (
        290 <= int(early["Retry-After"]) <= 300
    )  # 5 minutes, less the test's own time

    _age_failures(16)
    response = client.post(LOGIN, {"username": "support", "password": PASSWORD})
    assert response.status_code == 302


def test_a_locked_real_and_made_up_username_answer_alike(support_agent):
    answers = []
    for username in ("support", "ghost"):
        client = Client(REMOTE_ADDR=f"203.0.113.{len(answers) + 1}")
        _fail(client, username, times=6)
        response = client.post(LOGIN, {"username": username, "password": PASSWORD})
        # Alike but for the CSRF token of the language switcher (random each time).
        page = re.sub(
            rb'(name="csrfmiddlewaretoken" value=")[^"]+', rb"\1", response.content
        )
        answers.append((response.status_code, response["Retry-After"], page))
    assert answers[0] == answers[1]
    assert answers[0][0] == 429


def test_a_success_from_the_same_address_keeps_anothers_failures(support_agent):
    """An attacker with an account of their own cannot sign in between guesses to
    wipe the failures against someone else's."""
    UserFactory(username="insider")
    attacker = Client(REMOTE_ADDR=OFFICE)
    _fail(attacker, "support", times=5)
    assert (
        attacker.post(LOGIN, {"username": "insider", "password": PASSWORD}).status_code
        == 302
    )
    attacker.post(reverse("accounts:logout"))

    assert _fail(attacker, "support").status_code == 429


def test_a_success_clears_that_usernames_own_failures(support_agent):
    client = Client()
    _fail(client, "support", times=5)
    assert (
        client.post(LOGIN, {"username": "support", "password": PASSWORD}).status_code
        == 302
    )
    client.post(reverse("accounts:logout"))
    assert _fail(client, "support", times=5).status_code == 200


# Customers: the email address, hashed, is the username axes counts.


def test_a_locked_customer_page_says_when_to_try_again():
    make_account()
    client = Client()
    for _ in range(6):
        response = client.post(
            CUSTOMER_LOGIN, {"email": "siti@example.com", "password": "nope-nope"}
        )
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    page = response.content.decode()
    assert "Try again in 15 minutes" in page
    assert reverse("portal:password-reset") in page

    right = client.post(
        CUSTOMER_LOGIN, {"email": "SITI@example.com", "password": CUSTOMER_PASSWORD}
    )
    assert right.status_code == 429


def test_a_locked_customer_and_a_made_up_email_answer_alike():
    make_account()
    answers = []
    for email in ("siti@example.com", "nobody@example.com"):
        client = Client(REMOTE_ADDR=f"203.0.113.{len(answers) + 1}")
        for _ in range(6):
            client.post(CUSTOMER_LOGIN, {"email": email, "password": "nope-nope"})
        response = client.post(
            CUSTOMER_LOGIN, {"email": email, "password": CUSTOMER_PASSWORD}
        )
        # Alike but for the CSRF token of the language switcher (random each time).
        page = re.sub(
            rb'(name="csrfmiddlewaretoken" value=")[^"]+', rb"\1", response.content
        )
        answers.append((response.status_code, response["Retry-After"], page))
    assert answers[0] == answers[1]
    assert answers[0][0] == 429


def test_a_customers_sign_in_clears_her_own_failures():
    make_account()
    client = Client()
    wrong = {"email": "siti@example.com", "password": "nope-nope"}
    for _ in range(5):
        client.post(CUSTOMER_LOGIN, wrong)
    right = {"email": "siti@example.com", "password": CUSTOMER_PASSWORD}
    assert client.post(CUSTOMER_LOGIN, right).status_code == 302
    client.post(reverse("portal:logout"))
    for _ in range(5):
        assert client.post(CUSTOMER_LOGIN, wrong).status_code == 200
    assert client.post(CUSTOMER_LOGIN, right).status_code == 302


def test_a_customer_signs_in_after_six_failures_on_other_emails_at_her_address():
    make_account()
    stranger = Client(REMOTE_ADDR=OFFICE)
    for n in range(6):
        stranger.post(
            CUSTOMER_LOGIN, {"email": f"n{n}@example.com", "password": "nope-nope"}
        )
    response = Client(REMOTE_ADDR=OFFICE).post(
        CUSTOMER_LOGIN, {"email": "siti@example.com", "password": CUSTOMER_PASSWORD}
    )
    assert response.status_code == 302


# The token sign-in API


def _token(client, username: str, password: str):
    return client.post(TOKEN, {"username": username, "password": password})


def test_a_locked_token_sign_in_is_429_with_retry_after_and_code_locked(support_agent):
    client = APIClient()
    for _ in range(5):
        assert _token(client, "support", "wrong-password").status_code == 400
    sixth = _token(client, "support", "wrong-password")
    assert sixth.status_code == 429
    assert sixth["Retry-After"] == "900"
    assert sixth.json() == {
        "status": 429,
        "code": "locked",
        "detail": "Too many failed sign-ins. Try again in 15 minutes.",
        "errors": [],
    }

    right = _token(client, "support", PASSWORD)
    assert right.status_code == 429
    assert right.json()["code"] == "locked"


def test_a_locked_token_sign_in_answers_alike_for_a_made_up_username(support_agent):
    answers = []
    for username in ("support", "ghost"):
        client = APIClient(REMOTE_ADDR=f"203.0.113.{len(answers) + 1}")
        for _ in range(6):
            _token(client, username, "wrong-password")
        response = _token(client, username, PASSWORD)
        answers.append((response.status_code, response["Retry-After"], response.json()))
    assert answers[0] == answers[1]


def test_pages_and_api_share_the_username_lock(support_agent):
    _fail(Client(), "support", times=6)
    assert _token(APIClient(), "support", PASSWORD).status_code == 429


# Behind the TLS proxy: the client's own address, never the proxy's.

PROXY = "10.0.0.2"


def _via_proxy(client_address: str, spoofed: str | None = None) -> Client:
    forwarded = f"{spoofed}, {client_address}" if spoofed else client_address
    return Client(REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR=forwarded)


def test_behind_the_proxy_each_client_has_its_own_address_limit(
    support_agent, settings
):
    settings.AMANAH_PROXY_COUNT = 1
    settings.AMANAH_ADDRESS_FAILURE_LIMIT = 10
    sprayer = _via_proxy("203.0.113.66")
    for n in range(10):
        response = _fail(sprayer, f"guess{n}")
    assert response.status_code == 429
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {
        "203.0.113.66"
    }

    colleague = _via_proxy("203.0.113.67")
    response = colleague.post(LOGIN, {"username": "support", "password": PASSWORD})
    assert response.status_code == 302


def test_behind_the_proxy_a_spoofed_extra_hop_does_not_escape_the_lock(
    support_agent, settings
):
    settings.AMANAH_PROXY_COUNT = 1
    settings.AMANAH_ADDRESS_FAILURE_LIMIT = 10
    for n in range(10):
        _fail(_via_proxy("203.0.113.66", spoofed=f"192.0.2.{n}"), f"guess{n}")
    response = _via_proxy("203.0.113.66", spoofed="192.0.2.200").post(
        LOGIN, {"username": "support", "password": PASSWORD}
    )
    assert response.status_code == 429


def test_without_a_proxy_x_forwarded_for_is_ignored(support_agent, settings):
    settings.AMANAH_PROXY_COUNT = 0
    settings.AMANAH_ADDRESS_FAILURE_LIMIT = 10
    client = Client(REMOTE_ADDR="203.0.113.5")
    for n in range(10):
        client.defaults["HTTP_X_FORWARDED_FOR"] = f"192.0.2.{n}"
        _fail(client, f"guess{n}")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {
        "203.0.113.5"
    }
    response = client.post(LOGIN, {"username": "support", "password": PASSWORD})
    assert response.status_code == 429


def test_a_failed_customer_sign_in_keeps_no_email_address():
    make_account(email="siti@example.com")
    Client().post(
        CUSTOMER_LOGIN, {"email": "Siti@Example.com", "password": "not her password"}
    )
    [attempt] = AccessAttempt.objects.all()
    assert "example.com" not in attempt.post_data
    assert "example.com" not in attempt.username
    assert "email=********************" in attempt.post_data


def test_the_migration_masks_addresses_kept_before():
    from importlib import import_module

    from django.apps import apps

    kept = AccessAttempt.objects.create(
        user_agent="test",
        ip_address="203.0.113.9",
        username="hash",
        http_accept="*/*",
        path_info=CUSTOMER_LOGIN,
        get_data="",
        post_data="email=siti@example.com\npassword=********************",
        failures_since_start=1,
    )
    import_module(
        "apps.accounts.migrations.0004_mask_signin_attempt_forms"
    ).mask_post_data(apps, None)
    kept.refresh_from_db()
    assert kept.post_data == (
        "email=********************\npassword=********************"
    )


def test_a_token_sign_in_clears_that_usernames_own_failures(support_agent):
    api = APIClient()
    for _ in range(5):
        api.post(TOKEN, {"username": "support", "password": "wrong"})
    assert AccessAttempt.objects.filter(username="support").exists()
    ok = api.post(TOKEN, {"username": "support", "password": PASSWORD})
    assert ok.status_code == 200
    assert not AccessAttempt.objects.filter(username="support").exists()
