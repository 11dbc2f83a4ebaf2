import pytest
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.models import ApiToken
from apps.accounts.selectors import token_get_with_user
from apps.accounts.services import token_issue
from apps.core.errors import Forbidden
from tests.accounts.factories import PASSWORD
from tests.accounts.helpers import sign_in
from tests.portal.factories import PASSWORD as CUSTOMER_PASSWORD
from tests.portal.factories import make_account

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"
WRONG_SENTENCE = "Unable to log in with provided credentials."
WRONG = {
    "status": 400,
    "code": "authorization",
    "detail": WRONG_SENTENCE,
    "errors": [{"field": None, "code": "authorization", "message": WRONG_SENTENCE}],
}
LOCKED = {
    "status": 429,
    "code": "locked",
    "detail": "Too many failed sign-ins. Try again in 15 minutes.",
    "errors": [],
}


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
    assert response.json() == WRONG


def test_token_sign_in_names_missing_fields():
    response = APIClient().post(TOKEN_URL, {})
    assert response.status_code == 400
    assert {e["field"] for e in response.json()["errors"]} == {"username", "password"}


def test_api_refuses_anonymous_requests():
    response = APIClient().get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response.json()["detail"]


@pytest.mark.parametrize(
    "key", ["0" * 40, "amk_" + "0" * 43, "amk_" + "0" * 20 + "\x00" + "0" * 22]
)
def test_api_refuses_a_made_up_token(key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    response = client.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."


def test_api_refuses_the_token_of_a_deactivated_user(support_agent):
    key = token_issue(user=support_agent).key
    support_agent.is_active = False
    support_agent.save(update_fields=["is_active"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response.json()["detail"] == "User inactive or deleted."


def test_a_token_is_read_with_its_user_in_one_query(
    support_agent, django_assert_num_queries
):
    issued = token_issue(user=support_agent)
    with django_assert_num_queries(1):
        token = token_get_with_user(key=issued.key)
        assert token.user.username == "support"
        assert token.user.role == support_agent.role
    assert token == issued.token
    assert token.user == support_agent
    assert token.created_at == issued.token.created_at
    assert token.scopes is None
    assert token_get_with_user(key="amk_" + "0" * 43) is None
    assert token_get_with_user(key="0" * 40) is None


# API tokens are for staff: a customer's reach nothing but /auth/me/ (issue #15).


@pytest.mark.parametrize(
    "password", [CUSTOMER_PASSWORD, "wrong-password-123"], ids=["right", "wrong"]
)
def test_a_customer_gets_no_token_and_the_answers_do_not_tell_the_password(password):
    user = make_account().user
    client = APIClient()
    answers = [
        (r.status_code, r.json())
        for r in (
            client.post(TOKEN_URL, {"username": user.username, "password": password})
            for _ in range(6)
        )
    ]
    # The right password counts as a failure too: the lockout does not tell it apart.
    assert answers == [(400, WRONG)] * 5 + [(429, LOCKED)]
    assert not ApiToken.objects.exists()


def test_token_issue_refuses_a_customer():
    user = make_account().user
    with pytest.raises(Forbidden, match="API tokens are for staff"):
        token_issue(user=user)
    assert not ApiToken.objects.exists()


def test_api_refuses_the_token_a_customer_was_given_before(support_agent):
    key = token_issue(user=support_agent).key
    # As if issued before tokens were staff-only: its holder is a customer now.
    ApiToken.objects.update(user=make_account().user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert response.json()["detail"] == "Invalid token."


def test_the_old_migration_runs_without_drf_tokens():
    from importlib import import_module

    from django.apps import apps

    # DRF's token app has left: nothing to delete, and no error.
    import_module(
        "apps.accounts.migrations.0005_delete_customer_api_tokens"
    ).delete_customer_tokens(apps, None)


# The schema and its docs pages: staff only in production.

DOCS = ["/api/schema/?format=json", "/api/docs/", "/api/docs/?script="]


@pytest.fixture
def production_docs(settings):
    settings.AMANAH_API_DOCS_OPEN = False


@pytest.mark.parametrize("url", DOCS)
def test_in_production_the_schema_and_docs_refuse_anonymous_readers(
    production_docs, url
):
    response = Client().get(url)
    assert response.status_code == 401
    assert b"openapi" not in response.content
    assert b"swagger" not in response.content.lower()


@pytest.mark.parametrize("url", DOCS)
def test_in_production_the_schema_and_docs_refuse_customers(production_docs, url):
    client = Client()
    sign_in(client, make_account().user)
    response = client.get(url)
    assert response.status_code == 403
    assert b"openapi" not in response.content


@pytest.mark.parametrize("url", DOCS)
def test_in_production_staff_read_the_schema_and_docs(
    production_docs, support_agent, url
):
    client = Client()
    sign_in(client, support_agent)
    assert client.get(url).status_code == 200


def test_in_production_a_staff_token_reads_the_schema(production_docs, support_agent):
    key = token_issue(user=support_agent).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    assert "/api/v1/auth/token/" in response.json()["paths"]


def test_a_staff_session_owing_its_second_factor_reads_no_schema(
    production_docs, support_agent
):
    client = Client()
    client.force_login(support_agent)  # the password only
    assert client.get("/api/schema/?format=json").status_code == 401


@pytest.mark.parametrize("url", DOCS)
def test_in_development_the_schema_and_docs_are_open(settings, url):
    settings.AMANAH_API_DOCS_OPEN = True
    assert Client().get(url).status_code == 200
