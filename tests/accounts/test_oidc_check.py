"""The hourly check of OIDC-linked accounts with the provider (beat's
accounts.oidc_accounts_check), against a real OpenID provider (oidc-provider-mock)."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import ApiTokenKind, OidcIdentity, Role, User
from apps.accounts.oidc_services import oidc_accounts_check
from apps.accounts.services import api_token_create, token_issue
from apps.audit.models import AuditEvent
from tests.accounts.oidc_provider import (
    provider_sign_in,
)

pytestmark = pytest.mark.django_db


def _signed_in(client, provider, sub: str, **claims) -> User:
    provider.set_user(sub, **({"groups": ["amanah-support"]} | claims))
    answer = provider_sign_in(client.__class__(), sub)
    assert answer.status_code == 302
    return User.objects.get(oidc_identity__subject=sub)


@pytest.mark.parametrize("how", ["expire_refresh_tokens", "revoke_tokens"])
def test_a_refused_refresh_token_leaves_the_account_and_its_tokens(
    client, provider, how
):
    user = _signed_in(client, provider, "emp-c101")
    named = api_token_create(actor=user, name="CRM sync", scopes=["read"])
    signed = token_issue(user=user).token
    getattr(provider, how)("emp-c101")

    assert oidc_accounts_check() == {"refused": 1}

    user.refresh_from_db()
    assert user.is_active
    for token in (named.token, signed):
        token.refresh_from_db()
        assert token.revoked_at is None
    identity = OidcIdentity.objects.get(user=user)
    assert identity.refresh_token_sealed is None
    assert identity.refresh_refused_at is not None
    assert identity.deactivated_at is None
    assert not AuditEvent.objects.filter(action="user.deactivated").exists()
    # Nothing to check with any more, until the next sign-in brings a new token.
    assert oidc_accounts_check() == {}
    provider_sign_in(client, "emp-c101")
    identity.refresh_from_db()
    assert identity.refresh_token_sealed is not None
    assert identity.refresh_refused_at is None
    assert oidc_accounts_check() == {"unchanged": 1}


def test_groups_sent_in_the_id_token_only_are_read_at_the_check(client, provider):
    provider.options["userinfo_omit"] = ("groups",)
    user = _signed_in(client, provider, "emp-c201")
    provider.set_user("emp-c201", groups=["amanah-compliance"])

    assert oidc_accounts_check() == {"changed": 1}

    user.refresh_from_db()
    assert user.is_active
    assert user.role == Role.COMPLIANCE_OFFICER


def test_claims_without_the_role_claim_leave_the_account_as_it_is(client, provider):
    user = _signed_in(client, provider, "emp-c301")
    identity = OidcIdentity.objects.get(user=user)
    confirmed = identity.confirmed_at
    provider.set_user("emp-c301")  # no groups claim in the ID token or userinfo

    assert oidc_accounts_check() == {"unknown": 1}

    user.refresh_from_db()
    assert user.is_active
    assert user.role == Role.SUPPORT_AGENT
    identity.refresh_from_db()
    assert identity.confirmed_at == confirmed  # not a confirmation
    assert identity.checked_at is not None


def test_ambiguous_groups_at_the_check_leave_the_account(client, provider):
    user = _signed_in(client, provider, "emp-c302")
    provider.set_user("emp-c302", groups=["amanah-support", "amanah-privacy"])

    assert oidc_accounts_check() == {"ambiguous": 1}

    user.refresh_from_db()
    assert user.is_active
    assert user.role == Role.SUPPORT_AGENT


def test_one_failing_account_does_not_stop_the_others(client, provider, caplog):
    broken = _signed_in(client, provider, "emp-c401")
    fine = _signed_in(client, provider, "emp-c402")
    identity = OidcIdentity.objects.get(user=broken)
    blob = bytearray(identity.refresh_token_sealed)
    blob[-1] ^= 1  # tampered with: it no longer opens
    OidcIdentity.objects.filter(pk=identity.pk).update(refresh_token_sealed=bytes(blob))
    provider.set_user("emp-c402", groups=["amanah-privacy"])

    with caplog.at_level(logging.WARNING, logger="apps.accounts.oidc_services"):
        counts = oidc_accounts_check()

    assert counts == {"error": 1, "changed": 1}
    assert User.objects.get(pk=fine.pk).role == Role.PRIVACY_ADMIN
    assert User.objects.get(pk=broken.pk).is_active
    ours = [r for r in caplog.records if r.name.startswith("apps.")]
    failed = [r for r in ours if r.getMessage() == "oidc.check_failed"]
    assert len(failed) == 1
    assert failed[0].user_id == broken.pk
    assert failed[0].exc_info is None
    for record in ours:
        assert "emp-c401" not in record.getMessage()
        assert "emp-c401" not in str(record.__dict__)


def test_a_refreshed_id_token_that_does_not_verify_is_an_error(client, provider):
    user = _signed_in(client, provider, "emp-c403")
    provider.options["refresh_id_token_forged"] = True

    assert oidc_accounts_check() == {"error": 1}
    assert User.objects.get(pk=user.pk).is_active


def _confirmed_days_ago(user: User, days: float) -> None:
    OidcIdentity.objects.filter(user=user).update(
        confirmed_at=timezone.now() - timedelta(days=days)
    )


def test_accounts_not_reconfirmed_in_time_are_deactivated(client, provider, settings):
    settings.AMANAH_OIDC_RECONFIRM_DAYS = 7
    # A provider that issues no refresh token: nothing to check with hourly.
    stale = _signed_in(client, provider, "emp-c501")
    recent = _signed_in(client, provider, "emp-c502")
    OidcIdentity.objects.update(refresh_token_sealed=None)
    _confirmed_days_ago(stale, 7.01)
    _confirmed_days_ago(recent, 6.9)
    named = api_token_create(actor=stale, name="CRM sync", scopes=["read"])

    assert oidc_accounts_check() == {"unconfirmed": 1}

    stale.refresh_from_db()
    assert not stale.is_active
    named.token.refresh_from_db()
    assert named.token.revoked_at is not None
    assert User.objects.get(pk=recent.pk).is_active
    event = AuditEvent.objects.get(action="user.deactivated")
    assert event.details == {"reason": "not_reconfirmed", "via": "check"}
    assert oidc_accounts_check() == {}
    # The next sign-in that maps brings it back (the provider's deactivation).
    answer = provider_sign_in(client, "emp-c501")
    assert answer.status_code == 302
    stale.refresh_from_db()
    assert stale.is_active
    assert not stale.api_tokens.filter(
        kind=ApiTokenKind.NAMED, revoked_at__isnull=True
    ).exists()


def test_a_successful_check_reconfirms(client, provider, settings):
    settings.AMANAH_OIDC_RECONFIRM_DAYS = 7
    user = _signed_in(client, provider, "emp-c503")
    _confirmed_days_ago(user, 30)

    assert oidc_accounts_check() == {"unchanged": 1}

    assert User.objects.get(pk=user.pk).is_active
    identity = OidcIdentity.objects.get(user=user)
    assert timezone.now() - identity.confirmed_at < timedelta(minutes=1)


def test_a_refused_token_then_no_sign_in_deactivates_after_the_reconfirm_days(
    client, provider, settings
):
    settings.AMANAH_OIDC_RECONFIRM_DAYS = 7
    user = _signed_in(client, provider, "emp-c504")
    provider.expire_refresh_tokens("emp-c504")
    assert oidc_accounts_check() == {"refused": 1}
    _confirmed_days_ago(user, 8)

    assert oidc_accounts_check() == {"unconfirmed": 1}
    assert not User.objects.get(pk=user.pk).is_active


@pytest.mark.parametrize("days", ["0", "-1"])
def test_reconfirm_days_below_one_stop_start_up(days):
    from tests.accounts.test_oidc_settings import OIDC_ENV
    from tests.config.test_settings import PRODUCTION_ENV, _manage

    env = {**PRODUCTION_ENV, **OIDC_ENV, "AMANAH_OIDC_RECONFIRM_DAYS": days}
    result = _manage("check", env=env)
    assert result.returncode != 0
    assert "AMANAH_OIDC_RECONFIRM_DAYS must be 1 or more" in result.stderr


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_check_runs_at_a_time_in_all_processes(provider):
    """A second run (a redelivered task, a run past the hour) while one holds the
    job's lock on another connection does nothing, so no refresh token is used
    twice."""
    import threading

    from django.db import connection

    from apps.core.db import advisory_session_lock

    holding, done = threading.Event(), threading.Event()

    def other_run() -> None:
        with advisory_session_lock("accounts.oidc_accounts_check") as got:
            assert got
            holding.set()
            done.wait(10)
        connection.close()

    thread = threading.Thread(target=other_run)
    thread.start()
    try:
        assert holding.wait(10)
        assert oidc_accounts_check() == {"busy": 1}
    finally:
        done.set()
        thread.join()
    assert "busy" not in oidc_accounts_check()
