"""Staff sign-in through a real OpenID provider (oidc-provider-mock), never a mock of
mozilla-django-oidc."""

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import ApiToken, OidcIdentity, ProviderMfaDevice, Role, User
from apps.accounts.oidc import provider_forget
from apps.accounts.oidc_services import oidc_accounts_check, oidc_refresh_token_get
from apps.accounts.services import (
    token_issue,
    user_ensure_staff,
    users_deactivate_bulk,
)
from apps.audit.models import AuditEvent
from tests.accounts.helpers import current_code, sign_in
from tests.accounts.oidc_provider import (
    Provider,
    configure,
    provider_running,
    provider_sign_in,
)

pytestmark = pytest.mark.django_db


def _signed_in_user(client) -> User | None:
    user_id = client.session.get("_auth_user_id")
    return User.objects.get(pk=user_id) if user_id else None


def test_mapped_group_creates_the_account_with_its_role(client, provider):
    provider.set_user("emp-1001", groups=["amanah-support", "unrelated"])

    answer = provider_sign_in(client, "emp-1001")

    assert answer.status_code == 302
    user = _signed_in_user(client)
    assert user is not None
    assert user.role == Role.SUPPORT_AGENT
    assert user.is_active
    assert not user.has_usable_password()
    assert user.email == ""
    identity = OidcIdentity.objects.get(user=user)
    assert (identity.issuer, identity.subject) == (provider.issuer, "emp-1001")
    created = AuditEvent.objects.get(action="user.created", target_id=str(user.pk))
    assert created.details == {"role": "support_agent", "via": "oidc"}


def test_refresh_token_is_kept_sealed(client, provider):
    provider.set_user("emp-1002", groups=["amanah-support"])
    provider_sign_in(client, "emp-1002")

    identity = OidcIdentity.objects.select_related("data_key").get(subject="emp-1002")
    token = oidc_refresh_token_get(identity=identity)
    assert token
    assert identity.data_key is not None
    assert token.encode() not in bytes(identity.refresh_token_sealed)


def test_unmapped_group_is_refused_and_nothing_is_created(client, provider):
    provider.set_user("emp-2001", groups=["finance"])
    users_before = User.objects.count()

    answer = provider_sign_in(client, "emp-2001")

    assert answer.status_code == 403
    assert "not in a group that has a role in Amanah" in answer.content.decode()
    assert User.objects.count() == users_before
    assert not OidcIdentity.objects.exists()
    assert _signed_in_user(client) is None
    refused = AuditEvent.objects.get(action="user.oidc_sign_in_refused")
    assert refused.details == {"reason": "no_mapped_group", "account": "absent"}


def test_groups_mapping_to_different_roles_are_refused_as_ambiguous(client, provider):
    provider.set_user("emp-2002", groups=["amanah-support", "amanah-privacy"])

    answer = provider_sign_in(client, "emp-2002")

    assert answer.status_code == 403
    assert "groups that give different roles" in answer.content.decode()
    assert not OidcIdentity.objects.exists()
    refused = AuditEvent.objects.get(action="user.oidc_sign_in_refused")
    assert refused.details == {"reason": "ambiguous", "account": "absent"}


def test_groups_mapping_to_one_role_are_fine(client, provider):
    provider.set_user("emp-2003", groups=["amanah-support", "staff-all"])

    provider_sign_in(client, "emp-2003")

    assert _signed_in_user(client).role == Role.SUPPORT_AGENT


def test_role_is_rederived_at_each_sign_in(client, provider):
    provider.set_user("emp-3001", groups=["amanah-support"])
    provider_sign_in(client, "emp-3001")
    client.logout()
    provider.set_user("emp-3001", groups=["amanah-compliance"])

    provider_sign_in(client, "emp-3001")

    user = _signed_in_user(client)
    assert user.role == Role.COMPLIANCE_OFFICER
    assert User.objects.filter(oidc_identity__subject="emp-3001").count() == 1
    changed = AuditEvent.objects.get(action="user.role_changed")
    assert changed.details == {
        "from": "support_agent",
        "to": "compliance_officer",
        "via": "sign_in",
    }


def test_group_removed_deactivates_at_next_sign_in(client, provider):
    provider.set_user("emp-4001", groups=["amanah-support"])
    provider_sign_in(client, "emp-4001")
    user = _signed_in_user(client)
    token = token_issue(user=user).token
    other = client.__class__()
    other.force_login(user)
    client.logout()
    provider.set_user("emp-4001", groups=["finance"])

    answer = provider_sign_in(client, "emp-4001")

    assert answer.status_code == 403
    user.refresh_from_db()
    assert not user.is_active
    token.refresh_from_db()
    assert token.revoked_at is not None
    # Its other sessions ended too (as signing out everywhere ends them).
    answer = other.get(reverse("home"))
    assert answer.status_code == 302
    assert not answer.wsgi_request.user.is_authenticated
    event = AuditEvent.objects.get(action="user.deactivated")
    assert event.details == {"reason": "no_mapped_group", "via": "sign_in"}
    assert OidcIdentity.objects.get(user=user).deactivated_by == "provider"


def test_deactivated_by_provider_comes_back_when_a_group_maps_again(client, provider):
    provider.set_user("emp-4002", groups=["amanah-support"])
    provider_sign_in(client, "emp-4002")
    client.logout()
    provider.set_user("emp-4002", groups=[])
    provider_sign_in(client, "emp-4002")
    provider.set_user("emp-4002", groups=["amanah-support"])

    provider_sign_in(client, "emp-4002")

    user = _signed_in_user(client)
    assert user is not None
    assert user.is_active
    assert AuditEvent.objects.filter(action="user.reactivated").count() == 1


def test_account_deactivated_in_amanah_stays_refused(client, provider):
    provider.set_user("emp-4003", groups=["amanah-support"])
    provider_sign_in(client, "emp-4003")
    client.logout()
    User.objects.filter(oidc_identity__subject="emp-4003").update(is_active=False)

    answer = provider_sign_in(client, "emp-4003")

    assert answer.status_code == 403
    assert "deactivated" in answer.content.decode()
    assert not User.objects.get(oidc_identity__subject="emp-4003").is_active


def test_provider_mfa_skips_the_second_step(client, provider):
    provider.set_user("emp-5001", groups=["amanah-support"], amr=["pwd", "mfa"])

    answer = provider_sign_in(client, "emp-5001", next_url="/staff/")

    assert answer.status_code == 302
    assert answer["Location"] == "/staff/"
    user = _signed_in_user(client)
    device = ProviderMfaDevice.objects.get(user=user)
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    assert client.get("/staff/").status_code == 200
    event = AuditEvent.objects.get(action="user.signed_in_oidc")
    assert event.details == {"role": "support_agent", "second_factor": "provider:mfa"}


def test_without_amr_amanahs_second_step_comes_first(client, provider):
    provider.set_user("emp-5002", groups=["amanah-support"])

    provider_sign_in(client, "emp-5002")

    answer = client.get("/staff/")
    assert answer.status_code == 302
    assert answer["Location"].startswith(reverse("accounts:otp-setup"))
    event = AuditEvent.objects.get(action="user.signed_in_oidc")
    assert event.details["second_factor"] == "amanah_pending"


def test_amanahs_step_passed_after_an_oidc_sign_in_is_recorded(client, provider):
    provider.set_user("emp-5004", groups=["amanah-support"])
    provider_sign_in(client, "emp-5004")
    user = _signed_in_user(client)
    signed_in = AuditEvent.objects.get(action="user.signed_in_oidc")
    assert signed_in.details["second_factor"] == "amanah_pending"
    assert not AuditEvent.objects.filter(action="otp.verified").exists()

    client.get(reverse("accounts:otp-setup"))
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    client.post(reverse("accounts:otp-setup"), {"otp_token": current_code(device)})

    assert client.get("/staff/").status_code == 200
    passed = AuditEvent.objects.get(action="otp.verified")
    assert passed.pk > signed_in.pk
    assert (passed.actor_id, passed.details) == (user.pk, {"factor": "authenticator"})


def test_a_privacy_admins_deactivation_keeps_the_oidc_sign_in_refused(client, provider):
    provider.set_user("emp-4301", groups=["amanah-support"])
    provider_sign_in(client, "emp-4301")
    user = _signed_in_user(client)
    token = token_issue(user=user).token
    admin = user_ensure_staff(
        actor=None,
        username="admin-4301",
        role=Role.PRIVACY_ADMIN,
        password="a-long-password-1",
    )
    admin_client = client.__class__()
    sign_in(admin_client, admin)

    answer = admin_client.post(
        reverse("admin:accounts_user_changelist"),
        {
            "action": "deactivate_accounts",
            "_selected_action": [user.pk],
            "confirm": "yes",
        },
    )

    assert answer.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    answer = client.get(reverse("home"))
    assert not answer.wsgi_request.user.is_authenticated
    # The provider still maps the person to a role: still refused.
    answer = provider_sign_in(client, "emp-4301")
    assert answer.status_code == 403
    assert "Ask a privacy admin" in answer.content.decode()
    user.refresh_from_db()
    assert not user.is_active
    refused = AuditEvent.objects.get(action="user.oidc_sign_in_refused")
    assert refused.details == {"reason": "inactive", "account": "inactive"}


def test_password_alone_is_not_mfa(client, provider):
    provider.set_user("emp-5003", groups=["amanah-support"], amr=["pwd"])
    provider_sign_in(client, "emp-5003")
    client.logout()
    # An earlier MFA sign-in's device does not verify a later one without MFA.
    provider.set_user("emp-5003", groups=["amanah-support"], amr=["pwd", "otp"])
    provider_sign_in(client, "emp-5003")
    client.logout()
    provider.set_user("emp-5003", groups=["amanah-support"], amr=["pwd"])

    provider_sign_in(client, "emp-5003")

    assert DEVICE_ID_SESSION_KEY not in client.session
    answer = client.get("/staff/")
    assert answer["Location"].startswith(reverse("accounts:otp-setup"))


def test_start_sends_state_nonce_and_pkce(client, provider):
    answer = client.get(reverse("accounts:oidc-start"))

    location = urlsplit(answer["Location"])
    assert f"{location.scheme}://{location.netloc}" == provider.issuer
    query = parse_qs(location.query)
    assert query["response_type"] == ["code"]
    assert query["scope"] == ["openid"]
    assert query["redirect_uri"] == ["http://testserver/accounts/oidc/callback/"]
    assert query["code_challenge_method"] == ["S256"]
    for name in ("state", "nonce", "code_challenge"):
        assert len(query[name][0]) >= 32


def test_forged_callback_is_refused(client, provider):
    provider.set_user("emp-6001", groups=["amanah-support"])
    start = client.get(reverse("accounts:oidc-start"))
    authorize = start["Location"]
    back = httpx.post(authorize, data={"sub": "emp-6001"})
    callback = urlsplit(back.headers["location"])
    query = parse_qs(callback.query)

    # Another browser (no state of its own) replays the callback.
    stranger = client.__class__()
    answer = stranger.get(callback.path, {"code": query["code"][0], "state": "x"})
    assert answer.status_code in (400, 403)
    assert "_auth_user_id" not in stranger.session
    # The state tampered with in the signing-in browser.
    answer = client.get(callback.path, {"code": query["code"][0], "state": "tampered"})
    assert answer.status_code == 400
    # The genuine callback works once; replayed, it is refused.
    assert client.get(f"{callback.path}?{callback.query}").status_code == 302
    client.logout()
    answer = client.get(f"{callback.path}?{callback.query}")
    assert answer.status_code in (400, 403)
    assert "_auth_user_id" not in client.session


def test_password_sign_in_still_works(client, provider, support_agent):
    support_agent.set_password("a-long-password-1")
    support_agent.save()

    answer = client.post(
        reverse("accounts:login"),
        {"username": support_agent.username, "password": "a-long-password-1"},
    )

    assert answer.status_code == 302
    assert _signed_in_user(client) == support_agent
    page = client.get(reverse("accounts:login")).content.decode()
    assert "Sign in with your company account" not in page  # signed in: redirected


def test_login_page_offers_the_company_account(client, provider):
    page = client.get(reverse("accounts:login")).content.decode()

    assert "Sign in with your company account" in page
    assert 'name="password"' in page


def test_login_page_without_a_provider_has_no_button(client, settings):
    settings.AMANAH_OIDC_ISSUER = ""

    page = client.get(reverse("accounts:login")).content.decode()

    assert "Sign in with your company account" not in page
    assert client.get(reverse("accounts:oidc-start")).status_code == 404
    assert client.get(reverse("accounts:oidc-callback")).status_code == 404


def test_provider_down_fails_with_a_page(client, settings):
    configure(settings, "http://localhost:9")  # nothing listens there

    answer = client.get(reverse("accounts:oidc-start"))

    assert answer.status_code == 503
    assert "cannot be reached" in answer.content.decode()
    # The rest of the site is unaffected.
    assert client.get(reverse("accounts:login")).status_code == 200
    provider_forget()


def test_beat_job_deactivates_when_the_group_is_removed(client, provider):
    provider.set_user("emp-7003", groups=["amanah-support"])
    provider_sign_in(client, "emp-7003")
    user = _signed_in_user(client)
    ApiToken.objects.all().delete()
    token = token_issue(user=user).token
    provider.set_user("emp-7003", groups=["finance"])

    assert oidc_accounts_check() == {"deactivated": 1}

    user.refresh_from_db()
    assert not user.is_active
    event = AuditEvent.objects.get(action="user.deactivated")
    assert event.details == {"reason": "no_mapped_group", "via": "check"}
    token.refresh_from_db()
    assert token.revoked_at is not None
    # Its session ended: the next page asks to sign in.
    answer = client.get("/staff/")
    assert answer.status_code == 302
    assert not answer.wsgi_request.user.is_authenticated
    # Checked once: the next run has nothing to do.
    assert oidc_accounts_check() == {}


def test_beat_job_applies_a_changed_role(client, provider):
    provider.set_user("emp-7004", groups=["amanah-support"])
    provider_sign_in(client, "emp-7004")
    provider.set_user("emp-7004", groups=["amanah-privacy"])

    assert oidc_accounts_check() == {"changed": 1}

    user = User.objects.get(oidc_identity__subject="emp-7004")
    assert user.role == Role.PRIVACY_ADMIN
    assert user.is_staff  # the admin site, as privacy admins have it
    assert OidcIdentity.objects.get(user=user).checked_at is not None


def test_beat_job_leaves_accounts_alone_while_the_provider_is_down(client, settings):
    with provider_running() as issuer:
        configure(settings, issuer)
        Provider(issuer).set_user("emp-7005", groups=["amanah-support"])
        provider_sign_in(client, "emp-7005")
    # The provider stopped; its discovery document is still known to this process.

    assert oidc_accounts_check() == {"unavailable": 1}

    assert User.objects.get(oidc_identity__subject="emp-7005").is_active


def test_beat_task_runs_the_check(client, provider):
    from apps.accounts.tasks import oidc_accounts_check_task

    provider.set_user("emp-7006", groups=["amanah-support"])
    provider_sign_in(client, "emp-7006")
    provider.set_user("emp-7006", groups=[])

    assert oidc_accounts_check_task.delay().get() == {"deactivated": 1}


def test_audit_details_hold_no_subject(client, provider):
    provider.set_user("emp-8001", groups=["amanah-support"], amr=["mfa"])
    provider_sign_in(client, "emp-8001")

    for event in AuditEvent.objects.all():
        assert "emp-8001" not in str(event.details)


def test_username_is_the_providers_unless_it_is_an_email_address(
    client, provider, settings
):
    settings.AMANAH_OIDC_SCOPES = "openid profile"
    provider.set_user(
        "emp-9001", groups=["amanah-support"], preferred_username="amina.k"
    )
    provider.set_user(
        "emp-9002", groups=["amanah-support"], preferred_username="bo@corp.example"
    )

    provider_sign_in(client, "emp-9001")
    provider_sign_in(client.__class__(), "emp-9002")

    assert User.objects.get(oidc_identity__subject="emp-9001").username == "amina.k"
    hashed = User.objects.get(oidc_identity__subject="emp-9002").username
    assert hashed.startswith("oidc-")
    assert "corp" not in hashed


def test_accounts_without_a_refresh_token_wait_for_their_next_sign_in(client, provider):
    provider.set_user("emp-9003", groups=["amanah-support"])
    provider_sign_in(client, "emp-9003")
    OidcIdentity.objects.update(refresh_token_sealed=None)
    provider.set_user("emp-9003", groups=[])

    assert oidc_accounts_check() == {}
    assert User.objects.get(oidc_identity__subject="emp-9003").is_active


def test_ambiguous_groups_refuse_but_do_not_deactivate(client, provider):
    provider.set_user("emp-4101", groups=["amanah-support"])
    provider_sign_in(client, "emp-4101")
    user = _signed_in_user(client)
    token = token_issue(user=user).token
    client.logout()
    provider.set_user("emp-4101", groups=["amanah-support", "amanah-privacy"])

    answer = provider_sign_in(client, "emp-4101")

    assert answer.status_code == 403
    assert "groups that give different roles" in answer.content.decode()
    assert _signed_in_user(client) is None
    user.refresh_from_db()
    assert user.is_active
    assert user.role == Role.SUPPORT_AGENT
    token.refresh_from_db()
    assert token.revoked_at is None
    assert not AuditEvent.objects.filter(action="user.deactivated").exists()
    refused = AuditEvent.objects.get(action="user.oidc_sign_in_refused")
    assert refused.details == {"reason": "ambiguous", "account": "active"}


def test_without_the_role_claim_the_sign_in_is_refused_and_nothing_changes(
    client, provider
):
    provider.set_user("emp-4102", groups=["amanah-support"])
    provider_sign_in(client, "emp-4102")
    client.logout()
    provider.set_user("emp-4102")  # no groups claim at all

    answer = provider_sign_in(client, "emp-4102")

    assert answer.status_code == 403
    assert "did not say which groups" in answer.content.decode()
    refused = AuditEvent.objects.get(action="user.oidc_sign_in_refused")
    assert refused.details == {"reason": "unknown", "account": "active"}
    user = User.objects.get(oidc_identity__subject="emp-4102")
    assert user.is_active
    assert user.role == Role.SUPPORT_AGENT


def test_provider_cannot_revive_an_account_amanah_deactivated_since(client, provider):
    # The provider deactivates; a privacy admin reactivates, then deactivates the
    # account (the buttons on its admin page); the provider maps again.
    provider.set_user("emp-4201", groups=["amanah-support"])
    provider_sign_in(client, "emp-4201")
    client.logout()
    provider.set_user("emp-4201", groups=[])
    provider_sign_in(client, "emp-4201")
    user = User.objects.get(oidc_identity__subject="emp-4201")
    assert not user.is_active
    admin = user_ensure_staff(
        actor=None,
        username="admin-4201",
        role=Role.PRIVACY_ADMIN,
        password="a-long-password-1",
    )
    admin_client = client.__class__()
    sign_in(admin_client, admin)
    for active in (True, False):
        answer = admin_client.post(
            reverse("admin:accounts_user_active", args=[user.pk]),
            {"confirm": "yes", "active": "1" if active else "0"},
        )
        assert answer.status_code == 302, answer.content.decode()[:2000]
        user.refresh_from_db()
        assert user.is_active is active
    identity = OidcIdentity.objects.get(user=user)
    assert identity.deactivated_by == "amanah"
    provider.set_user("emp-4201", groups=["amanah-support"])

    answer = provider_sign_in(client, "emp-4201")

    assert answer.status_code == 403
    assert "This Amanah account is deactivated" in answer.content.decode()
    user.refresh_from_db()
    assert not user.is_active
    assert [
        e.details
        for e in AuditEvent.objects.filter(
            action__in=("user.reactivated", "user.deactivated"), target_id=str(user.pk)
        ).order_by("pk")
    ] == [
        {"reason": "no_mapped_group", "via": "sign_in"},
        {"via": "admin"},
        {"via": "admin", "tokens_revoked": 0},
    ]


def test_provider_cannot_revive_an_account_a_disposal_deactivated(client, provider):
    provider.set_user("emp-4202", groups=["amanah-support"])
    provider_sign_in(client, "emp-4202")
    client.logout()
    provider.set_user("emp-4202", groups=[])
    provider_sign_in(client, "emp-4202")
    user = User.objects.get(oidc_identity__subject="emp-4202")
    users_deactivate_bulk(user_ids=[user.pk])
    provider.set_user("emp-4202", groups=["amanah-support"])

    answer = provider_sign_in(client, "emp-4202")

    assert answer.status_code == 403
    assert not User.objects.get(pk=user.pk).is_active


@pytest.mark.parametrize(
    ("amr", "second_factor"),
    [
        (["hwk"], "amanah_pending"),
        (["otp"], "amanah_pending"),
        (["sms"], "amanah_pending"),
        (["pwd", "pin"], "amanah_pending"),  # two of one kind
        (["pwd", "otp"], "provider:pwd+otp"),
        (["face", "hwk"], "provider:face+hwk"),
        (["mfa"], "provider:mfa"),
    ],
)
def test_provider_mfa_needs_mfa_or_two_kinds_of_factor(
    client, provider, amr, second_factor
):
    provider.set_user("emp-5101", groups=["amanah-support"], amr=amr)

    provider_sign_in(client, "emp-5101")

    event = AuditEvent.objects.get(action="user.signed_in_oidc")
    assert event.details["second_factor"] == second_factor
    verified = DEVICE_ID_SESSION_KEY in client.session
    assert verified is (second_factor != "amanah_pending")
    answer = client.get("/staff/")
    if verified:
        assert answer.status_code == 200
    else:
        assert answer["Location"].startswith(reverse("accounts:otp-setup"))


@pytest.mark.parametrize(
    "next_url", ["https://evil.example/", "//evil.example/", "/\\evil.example/"]
)
def test_next_never_leads_off_site_after_the_callback(client, provider, next_url):
    provider.set_user("emp-5201", groups=["amanah-support"], amr=["mfa"])

    answer = provider_sign_in(client, "emp-5201", next_url=next_url)

    assert answer.status_code == 302
    location = answer["Location"]
    assert location.startswith("/")
    assert not location.startswith(("//", "/\\"))
    assert "evil" not in location
    assert _signed_in_user(client) is not None


def test_id_token_with_another_nonce_is_refused(client, provider):
    provider.set_user("emp-6101", groups=["amanah-support"])
    start = client.get(reverse("accounts:oidc-start"))
    authorize = urlsplit(start["Location"])
    query = parse_qs(authorize.query)
    assert len(query["nonce"][0]) >= 32
    # The provider is asked with another nonce than the one this browser keeps.
    query["nonce"] = ["a-nonce-of-another-sign-in-0123456789"]
    forged = authorize._replace(query=urlencode(query, doseq=True)).geturl()
    back = httpx.post(forged, data={"sub": "emp-6101"})
    callback = urlsplit(back.headers["location"])

    answer = client.get(f"{callback.path}?{callback.query}")

    assert answer.status_code == 403
    assert "could not be verified" in answer.content.decode()
    assert _signed_in_user(client) is None
    assert not OidcIdentity.objects.exists()


def test_issuer_ending_in_a_slash_is_kept_exactly(client, provider, settings):
    provider.options["issuer_slash"] = True
    configure(settings, provider.issuer + "/")
    provider.set_user("emp-6201", groups=["amanah-support"])

    answer = provider_sign_in(client, "emp-6201")

    assert answer.status_code == 302
    identity = OidcIdentity.objects.get(subject="emp-6201")
    assert identity.issuer == provider.issuer + "/"
    # The hourly check verifies the refreshed ID token against it too.
    assert oidc_accounts_check() == {"unchanged": 1}


@pytest.mark.parametrize("slash_at_provider", [True, False])
def test_issuer_must_be_the_discovery_documents_exactly(
    client, provider, settings, slash_at_provider
):
    provider.options["issuer_slash"] = slash_at_provider
    configured = provider.issuer + ("" if slash_at_provider else "/")
    configure(settings, configured)

    answer = client.get(reverse("accounts:oidc-start"))

    assert answer.status_code == 503
    assert "names another issuer" in answer.content.decode()


def test_reactivation_by_amanah_clears_the_providers_deactivation(client, provider):
    provider.set_user("emp-4203", groups=["amanah-support"])
    provider_sign_in(client, "emp-4203")
    client.logout()
    provider.set_user("emp-4203", groups=[])
    provider_sign_in(client, "emp-4203")
    user = User.objects.get(oidc_identity__subject="emp-4203")
    # Reactivated by Amanah (the ensure_staff command's service), then deactivated
    # some other way: the provider's old deactivation no longer counts.
    user_ensure_staff(
        actor=None,
        username=user.username,
        role=Role.SUPPORT_AGENT,
        password="a-long-password-1",
    )
    assert OidcIdentity.objects.get(user=user).deactivated_by == ""
    User.objects.filter(pk=user.pk).update(is_active=False)
    provider.set_user("emp-4203", groups=["amanah-support"])

    answer = provider_sign_in(client, "emp-4203")

    assert answer.status_code == 403
    assert not User.objects.get(pk=user.pk).is_active
