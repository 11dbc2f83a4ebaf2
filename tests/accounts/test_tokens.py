"""API tokens per client: sign-in tokens, named tokens with scopes, their checks."""

import hashlib
import logging
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.errors import AccountError
from apps.accounts.models import ApiToken, ApiTokenKind
from apps.accounts.scopes import ALL_SCOPES, Scope
from apps.accounts.selectors import api_token_list_for
from apps.accounts.services import (
    SIGN_IN_TOKENS_MAX,
    api_token_create,
    api_token_revoke,
    token_issue,
    user_sign_out_everywhere,
)
from apps.audit.models import AuditEvent
from apps.core.errors import Forbidden, NotFound
from tests.portal.factories import make_account

pytestmark = pytest.mark.django_db

ME = "/api/v1/auth/me/"


def _me(key: str, scheme: str = "Bearer"):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
    return api.get(ME)


def _named(user, name="CRM sync", scopes=("read",), days=90):
    return api_token_create(
        actor=user, name=name, scopes=list(scopes), expires_in_days=days
    )


# Sign-in tokens


def test_each_sign_in_issues_a_new_token_that_keeps_only_a_hash(support_agent):
    one, two = token_issue(user=support_agent), token_issue(user=support_agent)
    assert one.key != two.key
    for issued in (one, two):
        assert issued.key.startswith("amk_")
        assert len(issued.key) == 4 + 43
        token = ApiToken.objects.get(pk=issued.token.pk)
        assert token.key_hash == hashlib.sha256(issued.key.encode()).hexdigest()
        assert token.key_prefix == issued.key[:8]
        assert token.kind == ApiTokenKind.SIGN_IN
        assert (token.name, token.scopes) == ("", None)
        assert issued.key not in {
            str(getattr(token, f.attname)) for f in ApiToken._meta.concrete_fields
        }
        assert _me(issued.key).status_code == 200


def test_a_sign_in_token_lasts_the_configured_hours(support_agent, settings):
    settings.AMANAH_TOKEN_HOURS = 3
    before = timezone.now()
    token = token_issue(user=support_agent).token
    assert before + timedelta(hours=3) <= token.expires_at
    assert token.expires_at <= timezone.now() + timedelta(hours=3)


def test_issue_deletes_the_users_expired_tokens_only(support_agent, delivery_agent):
    past = timezone.now() - timedelta(seconds=1)
    mine = [token_issue(user=support_agent).token, _named(support_agent).token]
    theirs = token_issue(user=delivery_agent).token
    ApiToken.objects.update(expires_at=past)

    token_issue(user=support_agent)

    assert not ApiToken.objects.filter(pk__in=[t.pk for t in mine]).exists()
    assert ApiToken.objects.filter(pk=theirs.pk).exists()


def test_beyond_the_cap_the_oldest_sign_in_tokens_are_revoked(support_agent):
    now = timezone.now()
    ApiToken.objects.bulk_create(
        ApiToken(
            user=support_agent,
            kind=ApiTokenKind.SIGN_IN,
            key_hash=f"{n:064x}",
            key_prefix="amk_test",
            created_at=now - timedelta(minutes=SIGN_IN_TOKENS_MAX - n),
            expires_at=now + timedelta(hours=1),
        )
        for n in range(SIGN_IN_TOKENS_MAX)
    )
    named = _named(support_agent).token

    newest = token_issue(user=support_agent).token

    live = ApiToken.objects.filter(user=support_agent, kind=ApiTokenKind.SIGN_IN)
    assert live.filter(revoked_at=None).count() == SIGN_IN_TOKENS_MAX
    assert list(live.exclude(revoked_at=None).values_list("key_hash", flat=True)) == [
        f"{0:064x}"
    ]
    assert newest.revoked_at is None
    named.refresh_from_db()
    assert named.revoked_at is None


def test_token_issue_refuses_a_customer():
    with pytest.raises(Forbidden, match="API tokens are for staff"):
        token_issue(user=make_account().user)
    assert not ApiToken.objects.exists()


# Named tokens


def test_a_named_token_keeps_its_scopes_expiry_and_is_audited(support_agent):
    before = timezone.now()
    issued = api_token_create(
        actor=support_agent,
        name="  Mail sender ",
        scopes=["customers:write", "read", "read"],
        expires_in_days=30,
    )
    token = ApiToken.objects.get()
    assert token == issued.token
    assert (token.kind, token.name) == (ApiTokenKind.NAMED, "Mail sender")
    assert token.scopes == ["read", "customers:write"]  # ALL_SCOPES order, no repeat
    assert before + timedelta(days=30) <= token.expires_at
    assert token.expires_at <= timezone.now() + timedelta(days=30)
    event = AuditEvent.objects.get(action="api_token.created")
    assert event.details == {
        "id": token.pk,
        "token_name": "Mail sender",
        "scopes": ["read", "customers:write"],
    }
    assert _me(issued.key).status_code == 200


def test_a_named_token_lasts_90_days_unless_told(support_agent):
    token = api_token_create(actor=support_agent, name="CRM", scopes=["read"]).token
    assert token.expires_at - token.created_at == timedelta(days=90)


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"name": "  "}, "name", "Give a name of 1 to 100 characters."),
        ({"name": "x" * 101}, "name", "Give a name of 1 to 100 characters."),
        ({"name": "CRM\x00"}, "name", "A name may not hold control characters."),
        (
            {"name": "for ana@example.com"},
            "name",
            "Name the integration, not a person: no email addresses.",
        ),
        ({"scopes": []}, "scopes", "Choose at least one scope."),
        ({"scopes": ["read", "admin"]}, "scopes", "Unknown scope: admin."),
        ({"days": 0}, "expires_in_days", "A token lasts 1 to 365 days."),
        ({"days": 366}, "expires_in_days", "A token lasts 1 to 365 days."),
    ],
)
def test_a_named_token_refuses_bad_input(support_agent, kwargs, field, message):
    with pytest.raises(AccountError) as refused:
        _named(support_agent, **kwargs)
    assert (refused.value.field, refused.value.message) == (field, message)
    assert not ApiToken.objects.exists()
    assert not AuditEvent.objects.filter(action="api_token.created").exists()


def test_a_named_token_name_is_unique_among_live_tokens(support_agent, delivery_agent):
    first = _named(support_agent, name="CRM")
    with pytest.raises(AccountError, match="a token with that name already"):
        _named(support_agent, name="CRM")
    _named(delivery_agent, name="CRM")  # another person's names are theirs
    api_token_revoke(actor=support_agent, token_id=first.token.pk)
    _named(support_agent, name="CRM")  # free again once revoked
    assert ApiToken.objects.filter(user=support_agent, name="CRM").count() == 2


def test_a_customer_gets_no_named_token():
    with pytest.raises(Forbidden, match="API tokens are for staff"):
        _named(make_account().user)
    assert not ApiToken.objects.exists()


def test_scopes_are_what_the_request_carries(support_agent):
    sign_in = token_issue(user=support_agent).token
    named = _named(support_agent, scopes=["audience"]).token
    assert sign_in.scopes is None  # every scope
    assert named.scopes == [Scope.AUDIENCE]
    assert set(ALL_SCOPES) >= set(named.scopes)


# Revoking, listing, signing out everywhere


def test_revoke_stops_the_token_and_is_audited(support_agent):
    issued = _named(support_agent)
    api_token_revoke(actor=support_agent, token_id=issued.token.pk)
    issued.token.refresh_from_db()
    assert issued.token.revoked_at is not None
    event = AuditEvent.objects.get(action="api_token.revoked")
    assert event.details == {
        "id": issued.token.pk,
        "token_name": "CRM sync",
        "scopes": ["read"],
    }
    response = _me(issued.key)
    assert response.status_code == 401
    assert response.json()["detail"] == "The token has been revoked."


def test_revoke_refuses_another_persons_token_as_not_found(
    support_agent, delivery_agent
):
    theirs = _named(delivery_agent).token
    with pytest.raises(NotFound, match="No such token"):
        api_token_revoke(actor=support_agent, token_id=theirs.pk)
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert not AuditEvent.objects.filter(action="api_token.revoked").exists()


def test_revoke_refuses_a_token_revoked_already(support_agent):
    token = _named(support_agent).token
    api_token_revoke(actor=support_agent, token_id=token.pk)
    with pytest.raises(NotFound):
        api_token_revoke(actor=support_agent, token_id=token.pk)
    assert AuditEvent.objects.filter(action="api_token.revoked").count() == 1


def test_the_list_holds_live_tokens_newest_first(support_agent, delivery_agent):
    old = token_issue(user=support_agent).token
    revoked = _named(support_agent, name="old CRM").token
    api_token_revoke(actor=support_agent, token_id=revoked.pk)
    expired = _named(support_agent, name="expired").token
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now())
    new = _named(support_agent, name="CRM").token
    token_issue(user=delivery_agent)
    assert list(api_token_list_for(user=support_agent)) == [new, old]


def test_sign_out_everywhere_revokes_named_tokens_too(support_agent, delivery_agent):
    keys = [token_issue(user=support_agent).key, _named(support_agent).key]
    other = token_issue(user=delivery_agent).key
    user_sign_out_everywhere(user=support_agent)
    assert [_me(key).status_code for key in keys] == [401, 401]
    assert not api_token_list_for(user=support_agent).exists()
    assert _me(other).status_code == 200


# Authentication


@pytest.mark.parametrize("scheme", ["Bearer", "Token", "bearer", "token"])
def test_bearer_and_token_both_authenticate(support_agent, scheme):
    key = token_issue(user=support_agent).key
    response = _me(key, scheme)
    assert response.status_code == 200
    assert response.json()["username"] == "support"


def test_a_refusal_says_how_to_authenticate(support_agent):
    response = _me("amk_nothing")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert APIClient().get(ME)["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("Bearer", "Invalid token header. No credentials provided."),
        ("Bearer a b", "Invalid token header. Token string should not contain spaces."),
    ],
)
def test_a_malformed_header_is_refused(header, detail):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get(ME)
    assert response.status_code == 401
    assert response.json()["detail"] == detail


def test_an_expired_named_token_says_to_make_a_new_one(support_agent):
    issued = _named(support_agent)
    ApiToken.objects.update(expires_at=timezone.now())
    response = _me(issued.key)
    assert response.status_code == 401
    assert response.json()["detail"] == (
        "The token has expired; make a new one on the security page."
    )


def test_use_is_noted_at_most_once_a_minute(
    support_agent, django_capture_on_commit_callbacks
):
    key = token_issue(user=support_agent).key
    with django_capture_on_commit_callbacks(execute=True):
        assert _me(key).status_code == 200
    first = ApiToken.objects.get().last_used_at
    assert first is not None

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert _me(key).status_code == 200
    assert callbacks == []  # nothing to write within the minute
    assert ApiToken.objects.get().last_used_at == first

    ApiToken.objects.update(last_used_at=first - timedelta(minutes=1, seconds=1))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert _me(key).status_code == 200
    assert len(callbacks) == 1
    assert ApiToken.objects.get().last_used_at > first


def test_the_key_reaches_no_log_and_no_audit_detail(support_agent, caplog):
    caplog.set_level(logging.DEBUG)
    issued = _named(support_agent)
    sign_in = token_issue(user=support_agent)
    _me(issued.key)
    _me(sign_in.key)
    api_token_revoke(actor=support_agent, token_id=issued.token.pk)
    _me(issued.key)
    for key in (issued.key, sign_in.key):
        secret_parts = (key, key[8:], hashlib.sha256(key.encode()).hexdigest())
        for record in caplog.records:
            text = f"{record.getMessage()} {record.__dict__!r}"
            assert not any(part in text for part in secret_parts)
        for event in AuditEvent.objects.all():
            assert not any(part in repr(event.details) for part in secret_parts)
