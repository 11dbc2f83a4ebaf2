import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from apps.accounts.selectors import token_get_with_user
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


def test_api_refuses_a_token_with_a_nul_byte():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 20 + "\x00" + "0" * 19)
    assert client.get("/api/v1/auth/me/").status_code == 401


def test_api_refuses_the_token_of_a_deactivated_user(support_agent):
    token = Token.objects.create(user=support_agent)
    support_agent.is_active = False
    support_agent.save(update_fields=["is_active"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    response = client.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response.json()["detail"] == "User inactive or deleted."


def test_a_token_is_read_with_its_user_in_one_query(
    support_agent, django_assert_num_queries
):
    key = Token.objects.create(user=support_agent).key
    with django_assert_num_queries(1):
        token = token_get_with_user(key=key)
        assert token.user.username == "support"
        assert token.user.role == support_agent.role
    assert token.user == support_agent
    assert token.created is not None
    assert token_get_with_user(key="0" * 40) is None
