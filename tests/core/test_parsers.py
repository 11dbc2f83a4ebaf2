import json

import pytest
from rest_framework.test import APIClient

from apps.core import parsers
from apps.core.parsers import MAX_JSON_DEPTH, JSONTooDeep, json_loads_bounded
from tests.customers.factories import make_customer

DEEP = 100_000


def nested(depth: int, *, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


def nested_objects(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def test_json_as_deep_as_the_limit_is_read():
    assert json_loads_bounded(nested(MAX_JSON_DEPTH)) is not None
    assert json_loads_bounded(nested_objects(MAX_JSON_DEPTH).encode())["a"]


@pytest.mark.parametrize(
    "text",
    [nested(MAX_JSON_DEPTH + 1), nested_objects(MAX_JSON_DEPTH + 1), nested(DEEP)],
    ids=["lists", "objects", "100k"],
)
def test_json_deeper_than_the_limit_is_refused(text):
    with pytest.raises(JSONTooDeep, match=f"deeper than {MAX_JSON_DEPTH} levels"):
        json_loads_bounded(text)


def test_a_deep_body_is_refused_before_decoding(monkeypatch):
    def decode(*args, **kwargs):
        raise AssertionError("decoded a body the pre-scan should have refused")

    monkeypatch.setattr(parsers.json, "loads", decode)
    with pytest.raises(JSONTooDeep):
        json_loads_bounded(nested(DEEP))


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({"note": "[" * 1000 + '\\"{' * 500, "x": ['"]]]' * 300]})
    assert json_loads_bounded(text)["x"][0].startswith('"]]]')


def test_malformed_json_is_a_value_error_not_too_deep():
    with pytest.raises(ValueError, match="Expecting ',' delimiter") as caught:
        json_loads_bounded('{"a": [1, 2}')
    assert not isinstance(caught.value, JSONTooDeep)


def test_recursion_in_the_decoder_is_refused_too(monkeypatch):
    # The backstop: were the pre-scan ever to miss, the decoder's own RecursionError
    # is still a refusal, not a 500.
    monkeypatch.setattr(parsers, "_depth_exceeds", lambda text, limit: False)
    with pytest.raises(JSONTooDeep):
        json_loads_bounded(nested(DEEP))


# Every JSON endpoint, as in production: DEBUG off, a server error answers 500.


@pytest.fixture
def production(settings):
    settings.DEBUG = False


def post(client: APIClient, url: str, body: str):
    return client.post(url, body, content_type="application/json")


def signed_in(user) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(user)
    return client


@pytest.mark.django_db
@pytest.mark.parametrize("body", [nested(DEEP), nested_objects(DEEP)])
def test_token_sign_in_refuses_a_deep_body_with_400(production, support_agent, body):
    response = post(
        APIClient(raise_request_exception=False), "/api/v1/auth/token/", body
    )
    assert response.status_code == 400
    assert response.json() == {
        "status": 400,
        "code": "too_deep",
        "detail": f"JSON nested deeper than {MAX_JSON_DEPTH} levels.",
        "errors": [],
    }


@pytest.mark.django_db
def test_consent_audience_refuses_a_deep_body_with_400(production, privacy_admin):
    response = post(signed_in(privacy_admin), "/api/v1/consent/audience/", nested(DEEP))
    assert response.status_code == 400
    assert response.json()["code"] == "too_deep"


@pytest.mark.django_db
def test_reveal_refuses_a_deep_body_with_400(production, privacy_admin):
    customer = make_customer()
    url = f"/api/v1/customers/{customer.pk}/reveal/"
    response = post(signed_in(privacy_admin), url, nested_objects(DEEP))
    assert response.status_code == 400
    assert response.json()["code"] == "too_deep"


@pytest.mark.django_db
def test_opening_an_interaction_refuses_a_deep_body_with_400(production, support_agent):
    response = post(signed_in(support_agent), "/api/v1/interactions/", nested(DEEP))
    assert response.status_code == 400
    assert response.json()["code"] == "too_deep"


@pytest.mark.django_db
def test_malformed_json_answers_in_the_same_shape(production, support_agent):
    response = post(signed_in(support_agent), "/api/v1/interactions/", '{"kind": ')
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"status", "code", "detail", "errors"}
    assert (body["status"], body["errors"]) == (400, [])
    assert body["code"] == "parse_error"
    assert body["detail"].startswith("JSON parse error")


@pytest.mark.django_db
def test_a_body_within_the_limit_still_works(production, support_agent):
    customer = make_customer()
    response = post(
        signed_in(support_agent),
        "/api/v1/interactions/",
        json.dumps({"customer": str(customer.pk), "kind": "support_case"}),
    )
    assert response.status_code == 201, response.json()
