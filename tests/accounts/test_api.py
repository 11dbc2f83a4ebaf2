import pytest
from rest_framework.test import APIClient

from tests.accounts.factories import PASSWORD

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"


def test_token_sign_in_returns_a_token_that_authenticates(support_agent):
    client = APIClient()
    response = client.post(TOKEN_URL, {"username": "support", "password": PASSWORD})
    assert response.status_code == 200
    token = response.json()["token"]

    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = client.get("/api/v1/auth/me/")
    assert me.status_code == 200
    assert me.json()["username"] == "support"
    assert me.json()["role"] == "support_agent"


@pytest.mark.parametrize(
    ("username", "password"),
    [("support", "wrong-password-123"), ("nobody-here", PASSWORD)],
    ids=["wrong-password", "unknown-user"],
)
def test_token_sign_in_failure_does_not_say_which_part_was_wrong(
    support_agent, username, password
):
    response = APIClient().post(TOKEN_URL, {"username": username, "password": password})
    assert response.status_code == 400
    body = response.json()
    assert body == {"non_field_errors": ["Unable to log in with provided credentials."]}


def test_token_sign_in_names_missing_fields():
    response = APIClient().post(TOKEN_URL, {})
    assert response.status_code == 400
    assert set(response.json()) == {"username", "password"}


def test_api_refuses_anonymous_requests():
    response = APIClient().get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response.json()["detail"]


def test_api_refuses_a_made_up_token():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert client.get("/api/v1/auth/me/").status_code == 401
