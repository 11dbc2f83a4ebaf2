from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import Role
from apps.accounts.roles import ROLE_CAPABILITIES
from tests.accounts.factories import PASSWORD, UserFactory
from tests.accounts.helpers import current_code, sign_in

pytestmark = pytest.mark.django_db


def test_home_sends_anonymous_visitors_to_the_customer_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:login")
    page = client.get(response["Location"]).content.decode()
    assert f'href="{reverse("accounts:login")}"' in page  # staff: their own sign-in


def test_customers_are_sent_to_their_privacy_page(client, customer_user):
    sign_in(client, customer_user)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("portal:consents")


@pytest.mark.parametrize("role", [r for r in Role if r != Role.CUSTOMER])
def test_each_staff_role_sees_its_own_home_page(client, role):
    user = UserFactory(username=f"u-{role}", role=role)
    sign_in(client, user)
    response = client.get("/")
    html = response.content.decode()
    assert response.status_code == 200
    assert role.label in html
    for capability in ROLE_CAPABILITIES[role]:
        assert escape(capability) in html
    others = [
        c
        for r, caps in ROLE_CAPABILITIES.items()
        if r not in (role, Role.CUSTOMER)
        for c in caps
    ]
    assert not any(escape(c) in html for c in others)


def test_governance_roles_have_the_audit_trail_in_their_navigation(
    client, compliance_officer, support_agent
):
    sign_in(client, compliance_officer)
    assert reverse("audit:event-list") in client.get("/").content.decode()
    sign_in(client, support_agent)
    assert reverse("audit:event-list") not in client.get("/").content.decode()


def test_staff_sign_in_and_sign_out(client, support_agent):
    device = TOTPDevice.objects.create(user=support_agent, name="phone")
    response = client.post(
        reverse("accounts:login"), {"username": "support", "password": PASSWORD}
    )
    assert response.status_code == 302
    response = client.post(
        reverse("accounts:otp-verify"), {"otp_token": current_code(device)}
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200

    response = client.post(reverse("accounts:logout"))
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_sign_in_failure_does_not_say_whether_the_user_exists(client, support_agent):
    wrong = client.post(
        reverse("accounts:login"), {"username": "support", "password": "x"}
    )
    unknown = client.post(
        reverse("accounts:login"), {"username": "ghost", "password": "x"}
    )
    assert wrong.status_code == unknown.status_code == 200
    message = "The username or password is not right."
    assert message in wrong.content.decode()
    assert message in unknown.content.decode()


def test_repeated_failures_lock_the_username_out(client, support_agent, settings):
    url = reverse("accounts:login")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(url, {"username": "support", "password": "wrong"})
    response = client.post(url, {"username": "support", "password": PASSWORD})
    assert response.status_code == 429
    assert "Too many sign-in attempts" in response.content.decode()
    assert client.get("/").status_code == 302


def test_the_sixth_failure_locks_and_the_lock_cools_off(client, support_agent):
    from axes.models import AccessAttempt

    url = reverse("accounts:login")
    for _ in range(5):
        client.post(url, {"username": "support", "password": "wrong"})
    assert (
        client.post(url, {"username": "support", "password": "wrong"}).status_code
        == 429
    )
    locked = client.post(url, {"username": "support", "password": PASSWORD})
    assert locked.status_code == 429

    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert (
        client.post(url, {"username": "support", "password": PASSWORD}).status_code
        == 302
    )


def test_a_lockout_does_not_say_whether_the_user_exists(client, support_agent):
    url = reverse("accounts:login")
    pages = []
    for username in ("support", "ghost"):
        other = type(client)(REMOTE_ADDR=f"10.0.0.{len(pages) + 1}")
        for _ in range(6):
            response = other.post(url, {"username": username, "password": "wrong"})
        pages.append((response.status_code, response.content))
    assert pages[0] == pages[1]


def test_passwords_are_hashed_with_argon2_outside_tests(settings):
    from config.settings import base

    assert base.PASSWORD_HASHERS[0].endswith("Argon2PasswordHasher")
