"""The API's contract (apps/core/api.py, docs/API.md): one error envelope for every
error, Django's own included; unknown query parameters refused; one pagination style;
scopes; rate-limit headers; Location on 201; a schema that says all of it."""

import json

import pytest
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from apps.core.api import ApiView
from apps.core.schema import ERRORS
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def assert_envelope(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"status", "code", "detail", "errors"}, body
    assert body["status"] == status
    assert isinstance(body["detail"], str)
    assert body["detail"]
    for error in body["errors"]:
        assert set(error) == {"field", "code", "message"}
    if code is not None:
        assert body["code"] == code, body
    return body


# Errors


def test_a_validation_error_names_each_field(privacy_admin):
    response = api(privacy_admin).post("/api/v1/customers/", {"email": "x"})
    body = assert_envelope(response, 400)
    fields = {error["field"]: error["code"] for error in body["errors"]}
    assert fields == {"country": "required", "email": "invalid"}


def test_a_domain_error_has_the_envelope_with_its_field(privacy_admin):
    response = api(privacy_admin).post(
        "/api/v1/consent/audience/", {"purpose": "nope", "customer_ids": []}
    )
    body = assert_envelope(response, 400)
    [error] = body["errors"]
    assert (error["field"], error["message"]) == ("purpose", "Unknown purpose.")
    assert body["code"] == error["code"]


def test_an_unknown_url_under_api_is_a_json_404(privacy_admin):
    assert_envelope(api(privacy_admin).get("/api/v1/nothing-here/"), 404, "not_found")
    assert_envelope(Client().get("/api/v2/"), 404, "not_found")


def test_a_path_without_its_final_slash_is_a_404_that_says_so(privacy_admin):
    response = api(privacy_admin).post("/api/v1/customers", {"country": "ID"})
    body = assert_envelope(response, 404, "not_found")
    assert "/api/v1/customers/" in body["detail"]


def test_an_id_that_is_not_a_uuid_is_a_json_404(privacy_admin):
    response = api(privacy_admin).get("/api/v1/customers/not-a-uuid/")
    assert_envelope(response, 404, "not_found")


def test_another_customers_id_is_the_same_404(support_agent):
    customer = make_customer()
    response = api(support_agent).get(f"/api/v1/customers/{customer.pk}/")
    assert_envelope(response, 404, "not_found")


def test_a_method_the_operation_does_not_have_is_a_json_405(privacy_admin):
    response = api(privacy_admin).delete("/api/v1/customers/")
    assert_envelope(response, 405, "method_not_allowed")


def test_no_credentials_is_a_json_401_that_says_how_to_authenticate():
    response = APIClient().get("/api/v1/customers/")
    assert_envelope(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_role_is_a_json_403(support_agent):
    response = api(support_agent).get("/api/v1/alerts/")
    assert_envelope(response, 403)


def test_a_body_that_is_not_json_is_a_415(privacy_admin):
    response = api(privacy_admin).post(
        "/api/v1/customers/", {"country": "ID"}, format="multipart"
    )
    assert_envelope(response, 415, "unsupported_media_type")


def test_a_body_that_is_broken_json_is_a_400(privacy_admin):
    response = api(privacy_admin).post(
        "/api/v1/customers/", "{nope", content_type="application/json"
    )
    assert_envelope(response, 400, "parse_error")


@override_settings(DEBUG=False)
def test_a_server_error_under_api_is_a_json_500(privacy_admin, monkeypatch):
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("apps.monitoring.api.alert_list", explode)
    client = api(privacy_admin)
    client.raise_request_exception = False
    response = client.get("/api/v1/alerts/")
    body = assert_envelope(response, 500, "server_error")
    assert "boom" not in json.dumps(body)


def test_pages_outside_api_keep_django_s_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# Query parameters and pages


def test_an_unknown_query_parameter_is_a_400_naming_it(privacy_admin):
    response = api(privacy_admin).get("/api/v1/alerts/", {"colour": "red"})
    body = assert_envelope(response, 400, "unknown_parameter")
    assert [error["field"] for error in body["errors"]] == ["colour"]
    assert "status" in body["errors"][0]["message"]  # what it does take


def test_page_abc_is_a_400_not_a_404(privacy_admin):
    response = api(privacy_admin).get("/api/v1/customers/", {"page": "abc"})
    body = assert_envelope(response, 400)
    assert body["errors"][0]["field"] == "page"


@pytest.mark.parametrize("cursor", ["abc", "W10", "WyJ4Il0", "!!"])
def test_a_cursor_the_api_did_not_give_is_a_400(privacy_admin, cursor):
    response = api(privacy_admin).get("/api/v1/customers/", {"cursor": cursor})
    body = assert_envelope(response, 400)
    assert body["errors"][0]["field"] == "cursor"


@pytest.mark.parametrize("size", ["0", "1001", "ten", "-1"])
def test_a_page_size_out_of_range_is_a_400(privacy_admin, size):
    response = api(privacy_admin).get("/api/v1/customers/", {"page_size": size})
    assert assert_envelope(response, 400)["errors"][0]["field"] == "page_size"


def test_an_operation_without_parameters_refuses_any(privacy_admin):
    customer = make_customer()
    response = api(privacy_admin).get(
        f"/api/v1/customers/{customer.pk}/", {"fields": "all"}
    )
    assert assert_envelope(response, 400)["errors"][0]["field"] == "fields"


def test_cursor_pages_neither_skip_nor_repeat_while_customers_are_added(
    privacy_admin,
):
    first = [make_customer() for _ in range(5)]
    client = api(privacy_admin)
    page = client.get("/api/v1/customers/", {"page_size": 2}).json()
    assert set(page) == {"next", "results"}
    seen = [row["id"] for row in page["results"]]
    make_customer()  # newer: before the first page, never on a later one
    while page["next"]:
        page = client.get(page["next"]).json()
        seen += [row["id"] for row in page["results"]]
    assert len(seen) == len(set(seen)) == 5
    assert set(seen) == {str(c.pk) for c in first}


# Answers


def test_a_201_says_where_the_new_object_is(privacy_admin):
    response = api(privacy_admin).post("/api/v1/customers/", {"country": "ID"})
    assert response.status_code == 201
    location = response["Location"]
    assert location == f"/api/v1/customers/{response.json()['id']}/"
    assert api(privacy_admin).get(location).status_code == 200


def test_every_answer_carries_the_rate_limit(privacy_admin):
    response = api(privacy_admin).get("/api/v1/customers/")
    assert int(response["RateLimit-Limit"]) >= 1
    assert 0 <= int(response["RateLimit-Remaining"]) < int(response["RateLimit-Limit"])
    assert 1 <= int(response["RateLimit-Reset"]) <= 60


@override_settings(AMANAH_API_RATE="2/hour")
def test_past_the_rate_limit_a_429_says_when_to_come_back(privacy_admin):
    client = api(privacy_admin)
    assert client.get("/api/v1/customers/").status_code == 200
    assert client.get("/api/v1/customers/")["RateLimit-Remaining"] == "0"
    response = client.get("/api/v1/customers/")
    assert_envelope(response, 429, "throttled")
    assert 1 <= int(response["Retry-After"]) <= 3600
    assert response["RateLimit-Remaining"] == "0"


# The views keep it


def _api_views():
    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                view = getattr(pattern.callback, "view_class", None)
                if view is not None:
                    yield view

    return sorted({v for v in walk(get_resolver().url_patterns)}, key=str)


def test_every_api_operation_is_an_api_view_with_a_scope_for_each_change():
    views = [v for v in _api_views() if v.__module__.startswith("apps.")]
    api_views = [v for v in views if v.__module__.endswith(".api")]
    assert api_views
    for view in api_views:
        assert issubclass(view, ApiView), view
        if view.authentication_classes == []:
            continue  # no token: no scope (sign-in, the relay's signed webhook)
        for method in ("post", "put", "patch", "delete"):
            if hasattr(view, method):
                assert method in view.scopes, f"{view.__name__}.{method}"


# The schema


@pytest.fixture
def schema(privacy_admin):
    response = api(privacy_admin).get("/api/schema.json")
    assert response.status_code == 200
    return json.loads(response.content)


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_the_schema_is_json_by_default_and_yaml_on_request(privacy_admin):
    client = api(privacy_admin)
    default = client.get("/api/schema/")
    assert default["Content-Type"].startswith("application/vnd.oai.openapi+json")
    json.loads(default.content)
    yaml = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi")
    assert yaml.content.startswith(b"openapi:")


def test_operation_ids_read_as_function_names(schema):
    ids = [op["operationId"] for _, _, op in _operations(schema)]
    assert len(ids) == len(set(ids))
    assert "list_customers" in ids
    assert "export_audience_csv" in ids
    for name in ids:
        assert not name.endswith(("_get", "_post", "_patch", "_delete")), name


def test_request_bodies_are_json_only(schema):
    for path, method, operation in _operations(schema):
        if "requestBody" in operation:
            assert list(operation["requestBody"]["content"]) == ["application/json"], (
                path,
                method,
            )


def test_every_operation_declares_its_errors_with_the_envelope(schema):
    assert set(schema["components"]["schemas"]["Error"]["required"]) == {
        "status",
        "code",
        "detail",
        "errors",
    }
    for path, method, operation in _operations(schema):
        statuses = {int(s) for s in operation["responses"]}
        assert {400, 429, 500} <= statuses, (path, method)
        if operation.get("security"):  # not the sign-in, nor the signed webhook
            assert {401, 403} <= statuses, (path, method)
        if "{" in path:
            assert 404 in statuses, (path, method)
        for status in statuses & set(ERRORS):
            content = operation["responses"][str(status)]["content"]
            ref = content["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/Error", (path, method, status)


def test_the_schema_declares_bearer_auth(schema):
    schemes = schema["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= next(
        s for s in schemes.values() if s.get("scheme") == "bearer"
    ).items()


def test_the_schema_declares_202_csv_and_if_match(schema):
    paths = schema["paths"]
    consent = paths["/api/v1/customers/{customer_id}/consents/"]["post"]
    assert {"200", "202"} <= set(consent["responses"])
    csv = paths["/api/v1/consent/audience/{purpose}.csv"]["get"]
    assert list(csv["responses"]["200"]["content"]) == ["text/csv"]
    patch = paths["/api/v1/customers/{customer_id}/"]["patch"]
    headers = {p["name"]: p for p in patch["parameters"] if p["in"] == "header"}
    assert headers["If-Match"]["required"] is True
    assert {"412", "428"} <= set(patch["responses"])
    create = paths["/api/v1/customers/"]["post"]
    assert "Location" in create["responses"]["201"]["headers"]
    assert "Idempotency-Key" in {p["name"] for p in create["parameters"]}


def test_outputs_are_enums_where_inputs_are(schema):
    customer = schema["components"]["schemas"]["CustomerOutput"]["properties"]
    status = customer["status"]
    assert "$ref" in status or "enum" in status or "allOf" in status


def test_a_single_object_read_carries_an_etag_of_its_answer(support_agent):
    customer = make_customer()
    client = api(support_agent)
    opened = client.post(
        "/api/v1/interactions/", {"customer": str(customer.pk), "kind": "support_case"}
    )
    first = client.get(opened["Location"])
    again = client.get(opened["Location"])
    assert first["ETag"] == again["ETag"]
    client.post(f"{opened['Location']}close/")
    assert client.get(opened["Location"])["ETag"] != first["ETag"]


def test_a_deprecated_operation_says_so_in_its_answers_and_the_schema(
    privacy_admin, monkeypatch
):
    from datetime import date

    from apps.core.api import Deprecation
    from apps.monitoring.api import AlertListApi

    monkeypatch.setattr(
        AlertListApi,
        "deprecations",
        {"get": Deprecation(date(2027, 1, 1), date(2027, 7, 1), "/api/v2/alerts/")},
    )
    response = api(privacy_admin).get("/api/v1/alerts/")
    assert response.status_code == 200
    assert response["Deprecation"] == "@1798761600"
    assert response["Sunset"] == "Thu, 01 Jul 2027 00:00:00 GMT"
    assert response["Link"] == '</api/v2/alerts/>; rel="successor-version"'
    schema = json.loads(api(privacy_admin).get("/api/schema.json").content)
    assert schema["paths"]["/api/v1/alerts/"]["get"]["deprecated"] is True
    assert "deprecated" not in schema["paths"]["/api/v1/customers/"]["get"]
