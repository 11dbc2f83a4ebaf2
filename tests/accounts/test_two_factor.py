"""Two-step sign-in, session expiry, signing out everywhere and API token expiry."""

import re
import time
from datetime import datetime, timedelta
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_create, token_issue
from apps.audit.models import AuditEvent
from tests.accounts.factories import PASSWORD, UserFactory
from tests.accounts.helpers import current_code, sign_in

pytestmark = pytest.mark.django_db

SETUP = reverse("accounts:otp-setup")
VERIFY = reverse("accounts:otp-verify")


def _password_sign_in(client, username: str) -> None:
    response = client.post(
        reverse("accounts:login"), {"username": username, "password": PASSWORD}
    )
    assert response.status_code == 302


def _actions(user) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_id=str(user.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_staff_without_a_device_are_sent_to_set_one_up_first(client, support_agent):
    _password_sign_in(client, "support")
    for path in ("/", "/staff/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith(SETUP)


def test_a_session_without_its_second_factor_does_not_count_for_the_api(
    client, support_agent
):
    _password_sign_in(client, "support")
    assert client.get("/api/v1/auth/me/").status_code in (401, 403)


def test_setting_up_an_authenticator(client, support_agent):
    _password_sign_in(client, "support")
    page = client.get(SETUP + "?next=/staff/")
    html = page.content.decode()
    assert page.status_code == 200
    assert "<svg" in html
    device = TOTPDevice.objects.get(user=support_agent, confirmed=False)

    wrong = client.post(SETUP, {"otp_token": "000000", "next": "/staff/"})
    assert "That code is not right" in wrong.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert "otp.device_confirmed" not in _actions(support_agent)

    done = client.post(SETUP, {"otp_token": current_code(device), "next": "/staff/"})
    codes = re.findall(r"<li><code>(\w+)</code></li>", done.content.decode())
    assert len(codes) == 10
    device.refresh_from_db()
    assert device.confirmed
    assert StaticToken.objects.filter(device__user=support_agent).count() == 10
    assert "otp.device_confirmed" in _actions(support_agent)
    # Setting up the first authenticator at sign-in passes the step too.
    assert "otp.verified" in _actions(support_agent)
    assert client.get("/staff/").status_code == 200


def test_setup_cannot_be_confirmed_without_starting_it(client, support_agent):
    _password_sign_in(client, "support")
    response = client.post(SETUP, {"otp_token": "123456"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=support_agent, confirmed=True).exists()


def test_staff_with_a_device_give_a_code_at_every_sign_in(client, support_agent):
    device = TOTPDevice.objects.create(user=support_agent, name="phone")
    _password_sign_in(client, "support")
    assert client.get("/staff/")["Location"].startswith(VERIFY)

    wrong = client.post(VERIFY, {"otp_token": "12345x", "next": "/staff/"})
    assert wrong.status_code == 200
    assert "That code is not right" in wrong.content.decode()
    device.refresh_from_db()
    device.throttle_reset()

    assert "otp.verified" not in _actions(support_agent)
    code = current_code(device)
    response = client.post(VERIFY, {"otp_token": code, "next": "/staff/"})
    assert response["Location"] == "/staff/"
    assert client.get("/staff/").status_code == 200
    passed = AuditEvent.objects.get(action="otp.verified")
    assert (passed.actor_id, passed.details) == (
        support_agent.pk,
        {"factor": "authenticator"},
    )

    # The same code cannot be replayed in another session.
    other = type(client)()
    _password_sign_in(other, "support")
    replay = other.post(VERIFY, {"otp_token": code})
    assert "That code is not right" in replay.content.decode()


def test_a_recovery_code_works_once(client, support_agent):
    sign_in(client, support_agent)
    page = client.post(reverse("accounts:security"), {"action": "recovery_codes"})
    code = re.findall(r"<li><code>(\w+)</code></li>", page.content.decode())[0]
    client.post(reverse("accounts:logout"))

    _password_sign_in(client, "support")
    assert client.post(VERIFY, {"otp_token": code})["Location"] == "/"
    assert "otp.recovery_code_used" in _actions(support_agent)
    passed = AuditEvent.objects.get(action="otp.verified")
    assert passed.details == {"factor": "recovery_code"}
    client.post(reverse("accounts:logout"))

    _password_sign_in(client, "support")
    again = client.post(VERIFY, {"otp_token": code})
    assert again.status_code == 200
    assert "That code is not right" in again.content.decode()


def test_the_next_address_never_leaves_the_site(client, support_agent):
    device = TOTPDevice.objects.create(user=support_agent, name="phone")
    _password_sign_in(client, "support")
    response = client.post(
        VERIFY, {"otp_token": current_code(device), "next": "https://evil.example/"}
    )
    assert response["Location"] == "/"


def test_customers_may_choose_two_step_sign_in(client, customer_user):
    client.force_login(customer_user)
    assert client.get(reverse("accounts:security")).status_code == 200
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=customer_user)
    client.post(SETUP, {"otp_token": current_code(device)})
    device.refresh_from_db()
    assert device.confirmed

    other = type(client)()
    other.force_login(customer_user)
    assert other.get(reverse("portal:consents"))["Location"].startswith(VERIFY)

    response = client.post(reverse("accounts:security"), {"action": "disable"})
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=customer_user).exists()
    assert "otp.reset" in _actions(customer_user)


def test_staff_cannot_turn_their_second_factor_off(client, support_agent):
    sign_in(client, support_agent)
    response = client.post(reverse("accounts:security"), {"action": "disable"})
    assert response.status_code == 302
    assert TOTPDevice.objects.filter(user=support_agent, confirmed=True).exists()
    assert "otp.reset" not in _actions(support_agent)


def test_sign_out_everywhere_ends_every_session_and_token(client, support_agent):
    laptop, phone = client, type(client)()
    sign_in(laptop, support_agent)
    sign_in(phone, support_agent)
    keys = [
        token_issue(user=support_agent).key,
        token_issue(user=support_agent).key,
        api_token_create(actor=support_agent, name="CRM", scopes=["read"]).key,
    ]

    response = phone.post(
        reverse("accounts:security"), {"action": "sign_out_everywhere"}
    )
    assert response["Location"] == reverse("accounts:login")
    assert laptop.get("/staff/").status_code == 302
    assert phone.get("/staff/").status_code == 302
    assert not ApiToken.objects.filter(user=support_agent, revoked_at=None).exists()
    api = APIClient()
    for key in keys:
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        answer = api.get("/api/v1/auth/me/")
        assert answer.status_code == 401
        assert answer.json()["detail"] == "The token has been revoked."
    assert "user.signed_out_everywhere" in _actions(support_agent)

    # Signing in afresh works.
    support_agent.refresh_from_db()
    sign_in(laptop, support_agent)
    assert laptop.get("/staff/").status_code == 200


def test_an_idle_session_is_signed_out(client, support_agent, settings):
    sign_in(client, support_agent)
    assert client.get("/staff/").status_code == 200
    session = client.session
    session["amanah_last_seen"] = int(time.time()) - (
        settings.AMANAH_SESSION_IDLE_MINUTES * 60 + 5
    )
    session.save()
    response = client.get("/staff/")
    assert response["Location"] == reverse("accounts:login")
    assert client.get("/staff/").status_code == 302


def test_an_active_session_stays_signed_in(client, support_agent, settings):
    sign_in(client, support_agent)
    session = client.session
    session["amanah_last_seen"] = int(time.time()) - (
        settings.AMANAH_SESSION_IDLE_MINUTES * 60 - 60
    )
    session.save()
    assert client.get("/staff/").status_code == 200
    assert client.session["amanah_last_seen"] >= int(time.time()) - 5


def test_api_tokens_expire(support_agent, settings):
    api = APIClient()
    before = timezone.now()
    first = api.post(
        "/api/v1/auth/token/", {"username": "support", "password": PASSWORD}
    ).json()
    hours = timedelta(hours=settings.AMANAH_TOKEN_HOURS)
    expires_at = ApiToken.objects.get().expires_at
    assert before + hours <= expires_at <= timezone.now() + hours
    assert datetime.fromisoformat(first["expires_at"]) == expires_at
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    api.credentials(HTTP_AUTHORIZATION=f"Token {first['token']}")
    expired = api.get("/api/v1/auth/me/")
    assert expired.status_code == 401
    assert expired.json()["detail"] == "The token has expired; sign in again."

    api.credentials()
    second = api.post(
        "/api/v1/auth/token/", {"username": "support", "password": PASSWORD}
    ).json()
    assert second["token"] != first["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {second['token']}")
    assert api.get("/api/v1/auth/me/").status_code == 200


def test_each_sign_in_gets_a_new_token_and_both_work(support_agent):
    api = APIClient()
    body = {"username": "support", "password": PASSWORD}
    one = api.post("/api/v1/auth/token/", body).json()["token"]
    two = api.post("/api/v1/auth/token/", body).json()["token"]
    assert one != two
    for key in (one, two):
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        assert api.get("/api/v1/auth/me/").json()["username"] == "support"


def test_a_privacy_admin_resets_a_colleagues_second_factor(privacy_admin):
    from apps.accounts.services import otp_disable
    from apps.core.errors import Forbidden

    agent = UserFactory(username="lost-phone")
    TOTPDevice.objects.create(user=agent, name="phone")
    with pytest.raises(Forbidden):
        otp_disable(actor=UserFactory(username="peer"), user=agent)
    assert TOTPDevice.objects.filter(user=agent).exists()

    otp_disable(actor=privacy_admin, user=agent)
    assert not TOTPDevice.objects.filter(user=agent).exists()
    assert "otp.reset" in _actions(agent)


def test_the_admin_resets_a_lost_second_factor(client, privacy_admin):
    privacy_admin.is_staff = True
    privacy_admin.save()
    privacy_admin.user_permissions.add(
        Permission.objects.get(codename="view_user", content_type__app_label="accounts")
    )
    agent = UserFactory(username="lost-phone-2")
    TOTPDevice.objects.create(user=agent, name="phone")
    sign_in(client, privacy_admin)
    response = client.post(
        "/admin/accounts/user/",
        {"action": "reset_second_factor", "_selected_action": [agent.pk]},
    )
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=agent).exists()


def test_totp_code_prints_the_current_code_in_development(support_agent, settings):
    settings.DEBUG = True
    device = TOTPDevice.objects.create(user=support_agent, name="phone")
    out = StringIO()
    call_command("totp_code", "support", stdout=out)
    assert out.getvalue().strip() == current_code(device)

    settings.DEBUG = False
    with pytest.raises(CommandError, match="only when DJANGO_DEBUG is on"):
        call_command("totp_code", "support")


def test_totp_code_names_a_user_without_an_authenticator(support_agent, settings):
    settings.DEBUG = True
    with pytest.raises(CommandError, match="no authenticator yet"):
        call_command("totp_code", "support")


@pytest.mark.parametrize(
    ("method", "path", "data"),
    [
        ("get", SETUP, None),
        ("post", SETUP, {"otp_token": "123456"}),
        ("post", reverse("accounts:security"), {"action": "recovery_codes"}),
        ("post", reverse("accounts:security"), {"action": "sign_out_everywhere"}),
    ],
    ids=["setup-page", "setup-confirm", "recovery-codes", "security-actions"],
)
def test_a_password_alone_cannot_change_an_enrolled_second_factor(
    client, support_agent, method, path, data
):
    device = TOTPDevice.objects.create(user=support_agent, name="phone")
    _password_sign_in(client, "support")
    response = getattr(client, method)(path, data)
    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY)
    assert list(TOTPDevice.objects.filter(user=support_agent)) == [device]
    assert not StaticToken.objects.filter(device__user=support_agent).exists()
    assert not AuditEvent.objects.filter(action__startswith="otp.").exists()


def test_the_second_factor_redirect_never_copies_a_search_into_its_url(
    client, support_agent
):
    TOTPDevice.objects.create(user=support_agent, name="phone")
    _password_sign_in(client, "support")
    response = client.get("/staff/?email=siti%40example.com&phone=%2B628123")
    assert response["Location"] == VERIFY + "?next=%2Fstaff%2F"
    setup = client.get(SETUP + "?next=/staff/%3Femail%3Dsiti%40example.com")
    assert "siti" not in setup["Location"]


def test_an_expired_session_signs_in_again_without_the_search_in_the_url(client):
    response = client.get("/staff/?email=siti%40example.com&phone=%2B628123")
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:login") + "?next=/staff/"


def test_second_factor_pages_are_never_cached(client, support_agent):
    _password_sign_in(client, "support")
    for path in (SETUP, VERIFY):
        assert "no-store" in client.get(path)["Cache-Control"]


def test_a_code_typed_with_a_dash_or_spaces_is_accepted(client, support_agent):
    device = TOTPDevice.objects.create(user=support_agent, name="phone")
    _password_sign_in(client, "support")
    code = current_code(device)
    typed = f"{code[:3]}-{code[3:]} "
    assert client.post(VERIFY, {"otp_token": typed})["Location"] == "/"


def test_the_right_code_while_throttled_says_to_wait(client, support_agent):
    device = TOTPDevice.objects.create(user=support_agent, name="phone")
    _password_sign_in(client, "support")
    client.post(VERIFY, {"otp_token": "000000"})  # wrong: the device now throttles
    response = client.post(VERIFY, {"otp_token": current_code(device)})
    assert response.status_code == 200
    assert "Too many wrong codes" in response.content.decode()


def test_new_recovery_codes_keep_a_session_verified_by_an_old_one(
    client, support_agent
):
    sign_in(client, support_agent)
    page = client.post(reverse("accounts:security"), {"action": "recovery_codes"})
    code = re.findall(r"<li><code>(\w+)</code></li>", page.content.decode())[0]
    client.post(reverse("accounts:logout"))
    _password_sign_in(client, "support")
    client.post(VERIFY, {"otp_token": code})  # the lost-phone case

    client.post(reverse("accounts:security"), {"action": "recovery_codes"})

    assert client.get("/staff/").status_code == 200


def test_the_admin_shows_no_authenticator_keys_or_recovery_codes():
    from django.contrib import admin
    from django_otp.plugins.otp_static.models import StaticDevice

    assert not admin.site.is_registered(TOTPDevice)
    assert not admin.site.is_registered(StaticDevice)


# The session key changes when the second factor is passed, as it does at the password
# step: a session id seen before the second step is useless after it.


def _session_id(client) -> str:
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def _signed_out_with(session_id: str, path: str = "/") -> bool:
    seen_before = Client()
    seen_before.cookies[django_settings.SESSION_COOKIE_NAME] = session_id
    response = seen_before.get(path)
    return response.status_code == 302 and "/login/" in response["Location"]


def test_passing_the_second_factor_gives_the_session_a_new_key(client, support_agent):
    device = TOTPDevice.objects.create(user=support_agent, name="phone")
    _password_sign_in(client, "support")
    before = _session_id(client)

    response = client.post(VERIFY, {"otp_token": current_code(device)})
    assert response["Location"] == "/"
    assert _session_id(client) != before
    assert client.get("/").status_code == 200
    assert _signed_out_with(before)


def test_setting_up_the_second_factor_gives_the_session_a_new_key(
    client, support_agent
):
    _password_sign_in(client, "support")
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=support_agent, confirmed=False)
    before = _session_id(client)

    response = client.post(SETUP, {"otp_token": current_code(device)})
    assert response.status_code == 200
    assert _session_id(client) != before
    assert client.get("/staff/").status_code == 200
    assert _signed_out_with(before, "/staff/")


def test_a_customers_second_factor_gives_the_session_a_new_key(client):
    from tests.portal.factories import PASSWORD as CUSTOMER_PASSWORD
    from tests.portal.factories import make_account

    customer = make_account()
    device = TOTPDevice.objects.create(user=customer.user, name="phone")
    response = client.post(
        reverse("portal:login"),
        {"email": "siti@example.com", "password": CUSTOMER_PASSWORD},
    )
    assert response.status_code == 302
    before = _session_id(client)

    response = client.post(VERIFY, {"otp_token": current_code(device)})
    assert response.status_code == 302
    assert _session_id(client) != before
    assert client.get(reverse("portal:consents")).status_code == 200
    assert _signed_out_with(before, reverse("portal:consents"))


def test_a_wrong_code_keeps_the_session_key(client, support_agent):
    TOTPDevice.objects.create(user=support_agent, name="phone")
    _password_sign_in(client, "support")
    before = _session_id(client)
    client.post(VERIFY, {"otp_token": "000000"})
    assert _session_id(client) == before


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["authenticator", "recovery"])
def test_one_code_given_to_two_processes_at_once_is_accepted_once(kind):
    import threading

    from django.db import connection

    from apps.accounts.errors import AccountError
    from apps.accounts.services import otp_recovery_codes_regenerate, otp_verify

    user = UserFactory(username="twice", role="support_agent")
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    code = (
        current_code(device)
        if kind == "authenticator"
        else otp_recovery_codes_regenerate(user=user)[0]
    )
    tries = 4
    barrier = threading.Barrier(tries)
    outcomes: list[str] = []

    def verify() -> None:
        try:
            barrier.wait()
            otp_verify(user=user, token=code)
            outcomes.append("accepted")
        except AccountError as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=verify) for _ in range(tries)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # The others are refused: the code is used (and then the throttle slows them).
    assert outcomes.count("accepted") == 1
    assert set(outcomes) - {"accepted"} <= {"wrong_code", "throttled"}


@pytest.mark.postgres
def test_a_code_check_locks_the_devices_for_no_key_update_only(support_agent):
    """New recovery codes refer to their device; the check of that reference (at
    commit, after the audit chain) must not wait on a verification holding it, so
    the devices are locked FOR NO KEY UPDATE, never FOR UPDATE."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from apps.accounts.services import otp_recovery_codes_regenerate, otp_verify

    device = TOTPDevice.objects.create(user=support_agent, name="p", confirmed=True)
    code = otp_recovery_codes_regenerate(user=support_agent)[0]
    with CaptureQueriesContext(connection) as queries:
        otp_verify(user=support_agent, token=current_code(device))
        otp_verify(user=support_agent, token=code)
        otp_recovery_codes_regenerate(user=support_agent)
    locks = [q["sql"] for q in queries if " FOR " in q["sql"] and "UPDATE" in q["sql"]]
    assert locks
    assert all("FOR NO KEY UPDATE" in sql for sql in locks), locks


def test_a_customer_s_two_step_pages_are_in_their_language(client):
    from apps.customers.services import customer_language_set
    from tests.portal.factories import PASSWORD as CUSTOMER_PASSWORD
    from tests.portal.factories import make_account

    customer = make_account()
    customer_language_set(customer=customer, language="de")
    client.post(
        reverse("portal:login"),
        {"email": "siti@example.com", "password": CUSTOMER_PASSWORD},
    )
    page = client.get(SETUP).content.decode()
    assert '<html lang="de"' in page
    assert f'action="{reverse("portal:language")}"' in page  # the switcher
    assert '<button type="submit">Bestätigen</button>' in page


def test_a_staff_member_s_two_step_pages_stay_english(client):
    staff = UserFactory(role="support_agent")
    _password_sign_in(client, staff.username)
    page = client.get(SETUP, HTTP_ACCEPT_LANGUAGE="de").content.decode()
    assert '<html lang="en"' in page
    assert "<h1>Set up two-step sign-in</h1>" in page
