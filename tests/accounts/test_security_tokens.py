"""API tokens on the security page (`/accounts/security/`): listed, made, revoked."""

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, ApiTokenKind
from apps.accounts.services import api_token_create, token_issue
from apps.audit.models import AuditEvent
from tests.accounts.helpers import sign_in
from tests.portal.factories import make_account

pytestmark = pytest.mark.django_db

SECURITY = reverse("accounts:security")


def _create(client, follow=False, **fields):
    data = {
        "action": "token_create",
        "name": "CRM sync",
        "scopes": ["read", "audience"],
        "expires_in_days": "30",
    }
    data.update(fields)
    return client.post(SECURITY, data, follow=follow)


def test_the_page_lists_live_tokens_with_a_revoke_button(client, support_agent):
    sign_in(client, support_agent)
    sign_in_token = token_issue(user=support_agent).token
    named = api_token_create(
        actor=support_agent, name="Mail sender", scopes=["audience"]
    ).token
    gone = api_token_create(actor=support_agent, name="Old CRM", scopes=["read"])
    ApiToken.objects.filter(pk=gone.token.pk).update(revoked_at=named.created_at)

    page = client.get(SECURITY)
    html = page.content.decode()
    assert page.status_code == 200
    assert "Mail sender" in html
    assert "Old CRM" not in html
    assert f"{named.key_prefix}…" in html
    assert f"{sign_in_token.key_prefix}…" in html
    assert "Ask who may be contacted for a purpose" in html  # the scope's label
    assert "Everything your role may do" in html  # the sign-in token's
    assert html.count('value="token_revoke"') == 2
    assert f'name="token_id" value="{named.pk}"' in html
    assert 'type="checkbox" name="scopes" value="customers:write"' in html
    assert "no-store" in page["Cache-Control"]


def test_making_a_token_shows_its_key_once(client, support_agent):
    sign_in(client, support_agent)
    response = _create(client)
    assert response.status_code == 200
    html = response.content.decode()
    token = ApiToken.objects.get(kind=ApiTokenKind.NAMED)
    assert (token.name, token.scopes) == ("CRM sync", ["read", "audience"])
    assert (token.expires_at - token.created_at).days == 30
    assert "it will not be shown again" in html
    assert "no-store" in response["Cache-Control"]
    key = next(
        word
        for word in html.replace("<", " ").replace(">", " ").split()
        if word.startswith("amk_") and len(word) > 8
    )
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api.get("/api/v1/auth/me/").status_code == 200
    # Never again: the list shows the prefix only.
    assert key not in client.get(SECURITY).content.decode()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": ""}, "This field is required."),
        ({"scopes": []}, "This field is required."),
        ({"expires_in_days": "400"}, "less than or equal to 365"),
    ],
)
def test_a_bad_token_form_is_shown_again_with_its_error(
    client, support_agent, fields, message
):
    sign_in(client, support_agent)
    response = _create(client, **fields)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ApiToken.objects.exists()


def test_a_repeated_name_is_refused_on_the_form(client, support_agent):
    sign_in(client, support_agent)
    _create(client)
    response = _create(client)
    assert response.status_code == 400
    assert "You have a token with that name already" in response.content.decode()
    assert ApiToken.objects.count() == 1


def test_revoking_a_token_from_the_page(client, support_agent):
    sign_in(client, support_agent)
    token = api_token_create(actor=support_agent, name="CRM", scopes=["read"]).token
    response = client.post(
        SECURITY, {"action": "token_revoke", "token_id": str(token.pk)}, follow=True
    )
    assert response.redirect_chain == [(SECURITY, 302)]
    assert f"Token {token.key_prefix}… is revoked." in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action="api_token.revoked").count() == 1


@pytest.mark.parametrize("token_id", ["theirs", "nonsense", ""])
def test_another_persons_token_cannot_be_revoked(
    client, support_agent, delivery_agent, token_id
):
    sign_in(client, support_agent)
    theirs = api_token_create(actor=delivery_agent, name="CRM", scopes=["read"]).token
    posted = str(theirs.pk) if token_id == "theirs" else token_id
    response = client.post(
        SECURITY, {"action": "token_revoke", "token_id": posted}, follow=True
    )
    assert "No such token." in response.content.decode()
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert not AuditEvent.objects.filter(action="api_token.revoked").exists()


def test_the_token_form_needs_a_csrf_token(support_agent):
    client = Client(enforce_csrf_checks=True)
    sign_in(client, support_agent)
    assert _create(client).status_code == 403
    assert not ApiToken.objects.exists()


def test_a_customer_sees_no_tokens_and_cannot_make_one(client):
    user = make_account().user
    sign_in(client, user)
    page = client.get(SECURITY).content.decode()
    assert "API tokens" not in page
    response = _create(client, follow=True)
    assert response.redirect_chain == [(SECURITY, 302)]
    assert "API tokens are for staff." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_staff_without_a_second_factor_cannot_make_a_named_token(client, support_agent):
    # A password alone reaches the page (to set the second factor up); a token that
    # lasts months takes the second factor.
    client.force_login(support_agent)
    page = client.get("/accounts/security/")
    assert page.status_code == 200
    assert b"Turn on two-step sign-in above first" in page.content
    assert b'value="token_create"' not in page.content
    response = client.post(
        "/accounts/security/",
        {"action": "token_create", "name": "CRM", "scopes": ["read"]},
    )
    assert response.status_code == 302
    assert "/2fa/setup/" in response["Location"]
    assert not ApiToken.objects.exists()
