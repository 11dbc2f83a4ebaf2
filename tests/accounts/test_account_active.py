"""Privacy admins deactivate and reactivate staff accounts (the admin site's action on
the user list and the button on a user's page, both through `user_active_set`)."""

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts.errors import AccountError
from apps.accounts.models import ApiToken, OidcIdentity, Role, User
from apps.accounts.scopes import ALL_SCOPES
from apps.accounts.services import (
    api_token_create,
    token_issue,
    user_active_set,
    user_ensure_staff,
)
from apps.audit.models import AuditEvent
from apps.core.errors import Forbidden
from tests.accounts.factories import PASSWORD, UserFactory
from tests.accounts.helpers import sign_in
from tests.concurrency import at_once

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:accounts_user_changelist")


def _admin(username: str = "pa-1") -> User:
    """A privacy admin as `user_ensure_staff` makes one: the admin site's view
    permissions included."""
    return user_ensure_staff(
        actor=None, username=username, role=Role.PRIVACY_ADMIN, password=PASSWORD
    )


def _admin_client(user: User) -> Client:
    client = Client()
    sign_in(client, user)
    return client


def _active_url(user: User) -> str:
    return reverse("admin:accounts_user_active", args=[user.pk])


def _signed_in_elsewhere(user: User) -> Client:
    other = Client()
    sign_in(other, user)
    assert other.get(reverse("home")).status_code == 200
    return other


def test_a_privacy_admin_deactivates_a_staff_member_from_the_user_list():
    admin = _admin()
    agent = UserFactory(username="leaver", role=Role.SUPPORT_AGENT)
    elsewhere = _signed_in_elsewhere(agent)
    sign_in_token = token_issue(user=agent)
    named = api_token_create(actor=agent, name="crm sync", scopes=[ALL_SCOPES[0]])
    client = _admin_client(admin)
    chosen = {"action": "deactivate_accounts", "_selected_action": [agent.pk]}

    # First a confirmation page; nothing changes yet.
    answer = client.post(CHANGELIST, chosen)
    assert answer.status_code == 200
    page = answer.content.decode()
    assert "Deactivate 1 account(s)?" in page
    assert "leaver" in page
    assert 'name="confirm" value="yes"' in page
    agent.refresh_from_db()
    assert agent.is_active

    answer = client.post(CHANGELIST, {**chosen, "confirm": "yes"})

    assert answer.status_code == 302
    agent.refresh_from_db()
    assert not agent.is_active
    # Every session ended, every API token revoked (sign-in and named).
    answer = elsewhere.get(reverse("home"))
    assert answer.status_code == 302
    assert not answer.wsgi_request.user.is_authenticated
    assert not ApiToken.objects.filter(user=agent, revoked_at__isnull=True).exists()
    api = APIClient()
    for key in (sign_in_token.key, named.key):
        api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        assert api.get("/api/v1/auth/me/").status_code == 401
    event = AuditEvent.objects.get(action="user.deactivated", target_id=str(agent.pk))
    assert event.actor_id == admin.pk
    assert event.details == {"via": "admin", "tokens_revoked": 2}
    # A password no longer signs them in.
    answer = Client().post(
        reverse("accounts:login"), {"username": "leaver", "password": PASSWORD}
    )
    assert answer.status_code == 200


def test_a_deactivation_is_noted_as_amanahs_on_the_oidc_link(settings):
    admin = _admin()
    agent = UserFactory(username="linked", role=Role.SUPPORT_AGENT)
    OidcIdentity.objects.create(user=agent, issuer="https://idp.example", subject="s1")

    assert user_active_set(actor=admin, user=agent, active=False) is True

    identity = OidcIdentity.objects.get(user=agent)
    assert identity.deactivated_by == "amanah"
    assert identity.deactivated_at is not None
    assert user_active_set(actor=admin, user=agent, active=True) is True
    identity.refresh_from_db()
    assert (identity.deactivated_by, identity.deactivated_at) == ("", None)


def test_the_button_on_the_user_page_confirms_then_deactivates_and_reactivates():
    admin = _admin()
    agent = UserFactory(username="agent-7", role=Role.SUPPORT_AGENT)
    token = token_issue(user=agent).token
    client = _admin_client(admin)

    page = client.get(reverse("admin:accounts_user_change", args=[agent.pk]))
    assert _active_url(agent) in page.content.decode()
    confirm = client.get(_active_url(agent))
    assert confirm.status_code == 200
    assert "Deactivate 1 account(s)?" in confirm.content.decode()
    agent.refresh_from_db()
    assert agent.is_active

    answer = client.post(_active_url(agent), {"confirm": "yes", "active": "0"})

    assert answer.status_code == 302
    agent.refresh_from_db()
    assert not agent.is_active
    # A second click on the same confirmation leaves it deactivated.
    client.post(_active_url(agent), {"confirm": "yes", "active": "0"})
    agent.refresh_from_db()
    assert not agent.is_active
    token.refresh_from_db()
    assert token.revoked_at is not None

    # The same button now reactivates; tokens stay revoked.
    confirm = client.get(_active_url(agent))
    assert "Reactivate 1 account(s)?" in confirm.content.decode()
    answer = client.post(_active_url(agent), {"confirm": "yes", "active": "1"})
    assert answer.status_code == 302
    agent.refresh_from_db()
    assert agent.is_active
    token.refresh_from_db()
    assert token.revoked_at is not None
    event = AuditEvent.objects.get(action="user.reactivated", target_id=str(agent.pk))
    assert (event.actor_id, event.details) == (admin.pk, {"via": "admin"})
    answer = Client().post(
        reverse("accounts:login"), {"username": "agent-7", "password": PASSWORD}
    )
    assert answer.status_code == 302


def test_reactivation_from_the_user_list():
    admin = _admin()
    agent = UserFactory(username="back-again", role=Role.SUPPORT_AGENT)
    user_active_set(actor=admin, user=agent, active=False)
    client = _admin_client(admin)

    answer = client.post(
        CHANGELIST,
        {
            "action": "reactivate_accounts",
            "_selected_action": [agent.pk],
            "confirm": "yes",
        },
    )

    assert answer.status_code == 302
    agent.refresh_from_db()
    assert agent.is_active


def test_the_button_needs_the_csrf_token():
    admin = _admin()
    agent = UserFactory(username="agent-8", role=Role.SUPPORT_AGENT)
    client = Client(enforce_csrf_checks=True)
    sign_in(client, admin)

    answer = client.post(_active_url(agent), {"confirm": "yes", "active": "0"})

    assert answer.status_code == 403
    agent.refresh_from_db()
    assert agent.is_active


def test_support_agents_and_compliance_officers_cannot(
    support_agent, compliance_officer
):
    target = UserFactory(username="target", role=Role.DELIVERY_AGENT)
    for actor in (support_agent, compliance_officer):
        with pytest.raises(Forbidden) as refused:
            user_active_set(actor=actor, user=target, active=False)
        assert refused.value.status == 403

    # A compliance officer let into the admin site (view permission) still gets 403,
    # and is not offered the actions.
    compliance_officer.is_staff = True
    compliance_officer.save()
    compliance_officer.user_permissions.add(
        Permission.objects.get(codename="view_user", content_type__app_label="accounts")
    )
    client = _admin_client(compliance_officer)
    assert client.get(_active_url(target)).status_code == 403
    assert (
        client.post(_active_url(target), {"confirm": "yes", "active": "0"}).status_code
        == 403
    )
    listing = client.get(CHANGELIST).content.decode()
    assert "deactivate_accounts" not in listing
    client.post(
        CHANGELIST,
        {
            "action": "deactivate_accounts",
            "_selected_action": [target.pk],
            "confirm": "yes",
        },
    )
    # A support agent is not let into the admin site at all.
    answer = _admin_client(support_agent).post(
        _active_url(target), {"confirm": "yes", "active": "0"}
    )
    assert answer.status_code == 302
    assert answer["Location"].startswith(reverse("admin:login"))
    target.refresh_from_db()
    assert target.is_active
    assert not AuditEvent.objects.filter(action="user.deactivated").exists()


def test_a_privacy_admin_cannot_deactivate_themselves():
    admin = _admin()
    _admin("pa-2")
    with pytest.raises(AccountError) as refused:
        user_active_set(actor=admin, user=admin, active=False)
    assert (refused.value.status, refused.value.code) == (400, "self")

    client = _admin_client(admin)
    answer = client.post(_active_url(admin), {"confirm": "yes", "active": "0"})
    assert answer.status_code == 400
    assert "You cannot deactivate your own account" in answer.content.decode()
    answer = client.post(
        CHANGELIST,
        {
            "action": "deactivate_accounts",
            "_selected_action": [admin.pk],
            "confirm": "yes",
        },
        follow=True,
    )
    assert "You cannot deactivate your own account" in answer.content.decode()
    admin.refresh_from_db()
    assert admin.is_active
    assert not AuditEvent.objects.filter(action="user.deactivated").exists()


def test_the_last_active_privacy_admin_stays(django_user_model):
    root = django_user_model.objects.create_superuser("root", password=PASSWORD)
    only = _admin()

    with pytest.raises(AccountError) as refused:
        user_active_set(actor=root, user=only, active=False)

    assert refused.value.code == "last_privacy_admin"
    assert "last active privacy admin" in refused.value.message
    only.refresh_from_db()
    assert only.is_active
    # With another active privacy admin, it is allowed.
    second = _admin("pa-2")
    assert user_active_set(actor=second, user=only, active=False) is True
    with pytest.raises(AccountError):
        user_active_set(actor=root, user=second, active=False)


def test_customers_logins_are_not_managed_here(privacy_admin, customer_user):
    with pytest.raises(AccountError) as refused:
        user_active_set(actor=privacy_admin, user=customer_user, active=False)
    assert refused.value.code == "not_staff"


def test_setting_the_state_it_has_changes_and_records_nothing(privacy_admin):
    agent = UserFactory(username="already", role=Role.SUPPORT_AGENT)

    assert user_active_set(actor=privacy_admin, user=agent, active=True) is False

    assert not AuditEvent.objects.filter(target_id=str(agent.pk)).exists()


def test_active_is_read_only_on_the_change_form(django_user_model):
    root = django_user_model.objects.create_superuser("root", password=PASSWORD)
    agent = UserFactory(username="agent-9", role=Role.SUPPORT_AGENT)
    client = _admin_client(root)

    answer = client.post(
        reverse("admin:accounts_user_change", args=[agent.pk]),
        {
            "username": agent.username,
            "role": agent.role,
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )

    assert answer.status_code == 302
    agent.refresh_from_db()
    assert agent.is_active


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_privacy_admins_deactivating_each_other_at_once_leave_one():
    first, second = _admin("pa-1"), _admin("pa-2")

    results = at_once(
        [
            lambda: user_active_set(actor=first, user=second, active=False),
            lambda: user_active_set(actor=second, user=first, active=False),
        ]
    )

    assert sorted(type(r).__name__ for r in results) == ["AccountError", "bool"]
    refused = next(r for r in results if isinstance(r, AccountError))
    assert refused.code == "last_privacy_admin"
    assert User.objects.filter(role=Role.PRIVACY_ADMIN, is_active=True).count() == 1
