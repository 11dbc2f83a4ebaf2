"""The token API: sign-in (`auth/token/`) and managing your tokens (`auth/tokens/`)."""

from urllib.parse import urlencode

import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken, ApiTokenKind
from apps.accounts.scopes import ALL_SCOPES
from apps.accounts.services import api_token_create, token_issue
from apps.audit.models import AuditEvent
from tests.accounts.factories import PASSWORD
from tests.accounts.helpers import sign_in

pytestmark = pytest.mark.django_db

SIGN_IN = "/api/v1/auth/token/"
TOKENS = "/api/v1/auth/tokens/"
FIELDS = {
    "id",
    "name",
    "kind",
    "scopes",
    "key_prefix",
    "created_at",
    "expires_at",
    "last_used_at",
}


def _api(key: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return api


@pytest.fixture
def signed_in(support_agent) -> APIClient:
    return _api(token_issue(user=support_agent).key)


@pytest.fixture
def verified(support_agent) -> APIClient:
    """A browser session past its second factor: what making a named token takes."""
    api = APIClient()
    sign_in(api, support_agent)
    return api


def _named_key(user, scopes=("read",), name="CRM sync") -> str:
    return api_token_create(actor=user, name=name, scopes=list(scopes)).key


# Sign-in


def test_two_sign_ins_give_two_working_tokens(support_agent):
    body = {"username": "support", "password": PASSWORD}
    answers = [APIClient().post(SIGN_IN, body, format="json") for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200]
    keys = [a.json()["token"] for a in answers]
    assert keys[0] != keys[1]
    assert [_api(k).get("/api/v1/auth/me/").status_code for k in keys] == [200, 200]
    assert ApiToken.objects.filter(kind=ApiTokenKind.SIGN_IN).count() == 2


def test_sign_in_takes_a_form_as_curl_d_sends_it(support_agent):
    response = Client().post(
        SIGN_IN,
        urlencode({"username": "support", "password": PASSWORD}),
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert set(response.json()) == {"token", "expires_at"}


def test_sign_in_refuses_multipart(support_agent):
    response = APIClient().post(
        SIGN_IN, {"username": "support", "password": PASSWORD}, format="multipart"
    )
    assert response.status_code == 415
    assert not ApiToken.objects.exists()


# Listing, making, reading, revoking


def test_the_list_shows_the_callers_live_tokens_only(
    signed_in, support_agent, delivery_agent, django_capture_on_commit_callbacks
):
    named = api_token_create(
        actor=support_agent, name="CRM", scopes=["read", "audience"]
    ).token
    token_issue(user=delivery_agent)
    with django_capture_on_commit_callbacks(execute=True):
        signed_in.get("/api/v1/auth/me/")
    response = signed_in.get(TOKENS)
    assert response.status_code == 200
    rows = response.json()["results"]
    assert response.json()["next"] is None
    assert [r["kind"] for r in rows] == ["named", "sign_in"]
    assert all(set(r) == FIELDS for r in rows)
    assert rows[0]["id"] == named.pk
    assert rows[0]["name"] == "CRM"
    assert rows[0]["scopes"] == ["read", "audience"]
    assert rows[0]["key_prefix"] == named.key_prefix
    assert rows[1]["scopes"] == list(ALL_SCOPES)  # a sign-in token: every scope
    assert rows[1]["last_used_at"] is not None  # the call before
    assert rows[0]["last_used_at"] is None


def test_a_new_named_token_is_shown_once_with_its_location(verified):
    response = verified.post(
        TOKENS,
        {"name": "Warehouse", "scopes": ["read"], "expires_in_days": 7},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) == FIELDS | {"token"}
    token = ApiToken.objects.get(pk=body["id"])
    assert response["Location"] == f"{TOKENS}{token.pk}/"
    assert (token.kind, token.name, token.scopes) == ("named", "Warehouse", ["read"])
    assert body["token"].startswith(token.key_prefix)
    assert "token" not in verified.get(response["Location"]).json()
    me = _api(body["token"]).get("/api/v1/auth/me/")
    assert me.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scopes": ["read"]}, "name"),
        ({"name": "CRM", "scopes": []}, "scopes"),
        ({"name": "CRM", "scopes": ["everything"]}, "scopes.0"),
        (
            {"name": "CRM", "scopes": ["read"], "expires_in_days": 366},
            "expires_in_days",
        ),
    ],
)
def test_a_bad_named_token_is_refused_by_field(verified, body, field):
    response = verified.post(TOKENS, body, format="json")
    assert response.status_code == 400
    assert field in {e["field"] for e in response.json()["errors"]}
    assert not ApiToken.objects.filter(kind=ApiTokenKind.NAMED).exists()


def test_a_repeated_name_is_refused(verified):
    body = {"name": "CRM", "scopes": ["read"]}
    assert verified.post(TOKENS, body, format="json").status_code == 201
    response = verified.post(TOKENS, body, format="json")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "name"
    assert ApiToken.objects.filter(kind=ApiTokenKind.NAMED).count() == 1


def test_one_token_is_read_and_revoked(signed_in, support_agent):
    named = api_token_create(actor=support_agent, name="CRM", scopes=["read"])
    url = f"{TOKENS}{named.token.pk}/"
    read = signed_in.get(url)
    assert read.status_code == 200
    assert read.json()["name"] == "CRM"

    assert signed_in.delete(url).status_code == 204
    assert AuditEvent.objects.filter(action="api_token.revoked").count() == 1
    assert signed_in.get(url).status_code == 404
    assert signed_in.delete(url).status_code == 404
    refused = _api(named.key).get("/api/v1/auth/me/")
    assert refused.status_code == 401


def test_another_persons_token_is_not_found(signed_in, delivery_agent):
    theirs = api_token_create(actor=delivery_agent, name="CRM", scopes=["read"]).token
    url = f"{TOKENS}{theirs.pk}/"
    assert signed_in.get(url).status_code == 404
    assert signed_in.delete(url).status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_a_verified_session_manages_tokens(client, support_agent):
    sign_in(client, support_agent)
    response = client.post(
        TOKENS, {"name": "CRM", "scopes": ["read"]}, content_type="application/json"
    )
    assert response.status_code == 201
    assert client.get(TOKENS).json()["results"][0]["name"] == "CRM"


def test_a_sign_in_token_cannot_make_a_named_token(signed_in):
    # A sign-in token took a password alone; a named token lasts months.
    response = signed_in.post(TOKENS, {"name": "CRM", "scopes": ["read"]})
    assert response.status_code == 403
    assert response.json()["code"] == "second_factor_needed"
    assert "/accounts/security/" in response.json()["detail"]
    assert not ApiToken.objects.filter(kind=ApiTokenKind.NAMED).exists()


@pytest.mark.parametrize(
    ("method", "url"),
    [("get", TOKENS), ("post", TOKENS), ("get", "self"), ("delete", "self")],
)
def test_a_named_token_cannot_manage_tokens(support_agent, method, url):
    named = api_token_create(actor=support_agent, name="CRM", scopes=list(ALL_SCOPES))
    if url == "self":
        url = f"{TOKENS}{named.token.pk}/"
    response = getattr(_api(named.key), method)(
        url, {"name": "more", "scopes": ["read"]}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "named_token"
    assert (
        ApiToken.objects.filter(kind=ApiTokenKind.NAMED, revoked_at=None).count() == 1
    )


def test_a_named_token_is_held_to_its_scopes(support_agent):
    api = _api(_named_key(support_agent, scopes=["audience"]))
    response = api.get("/api/v1/auth/me/")  # a read
    assert response.status_code == 403
    assert response.json()["code"] == "scope"
    assert (
        _api(_named_key(support_agent, name="reader"))
        .get("/api/v1/auth/me/")
        .status_code
        == 200
    )


# The schema


@pytest.fixture
def schema(support_agent) -> dict:
    api = _api(token_issue(user=support_agent).key)
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_declares_a_bearer_scheme(schema):
    schemes = schema["components"]["securitySchemes"]
    assert schemes["bearerAuth"]["type"] == "http"
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    assert "Token <key>" in schemes["bearerAuth"]["description"]
    assert "tokenAuth" not in schemes


def test_the_schema_shows_sign_in_with_a_json_body_only(schema):
    sign_in_op = schema["paths"]["/api/v1/auth/token/"]["post"]
    assert sign_in_op["operationId"] == "sign_in"
    assert list(sign_in_op["requestBody"]["content"]) == ["application/json"]


def test_the_schema_names_the_token_operations(schema):
    paths = schema["paths"]
    ids = {
        paths["/api/v1/auth/tokens/"]["get"]["operationId"],
        paths["/api/v1/auth/tokens/"]["post"]["operationId"],
        paths["/api/v1/auth/tokens/{token_id}/"]["get"]["operationId"],
        paths["/api/v1/auth/tokens/{token_id}/"]["delete"]["operationId"],
    }
    assert ids == {
        "list_api_tokens",
        "create_api_token",
        "get_api_token",
        "revoke_api_token",
    }
    created = paths["/api/v1/auth/tokens/"]["post"]["responses"]["201"]
    ref = created["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    output = schema["components"]["schemas"][ref]["properties"]
    assert "enum" in str(output["kind"]) or "$ref" in str(output["kind"])
    assert "enum" in str(output["scopes"]["items"]) or "$ref" in str(
        output["scopes"]["items"]
    )
