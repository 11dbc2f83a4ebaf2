import pytest
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.audit.models import AuditEvent
from apps.customers.models import Customer
from tests.accounts.factories import UserFactory
from tests.customers.factories import customer_data, make_customer
from tests.errors import error_code, error_fields

pytestmark = pytest.mark.django_db

URL = "/api/v1/customers/"
SEARCH = "/api/v1/customers/search/"


@pytest.fixture
def api(privacy_admin) -> APIClient:
    client = APIClient()
    client.force_authenticate(privacy_admin)
    return client


def payload(**overrides):
    data = customer_data(**overrides)
    if hasattr(data["date_of_birth"], "isoformat"):
        data["date_of_birth"] = data["date_of_birth"].isoformat()
    return data


def test_create_returns_masked_values_and_a_uuid(api):
    response = api.post(URL, payload(email="jane@example.com"), format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["email"] == "j•••@example.com"
    assert body["phone"] == "•••• 7890"
    assert body["notes"] is None
    assert Customer.objects.filter(pk=body["id"]).exists()
    assert response["Location"] == f"{URL}{body['id']}/"
    assert "jane@example.com" not in response.content.decode()


def test_search_by_exact_email_and_phone_in_the_body(api):
    jane = make_customer(email="jane@example.com", phone="+62 812-1111-2222")
    make_customer(email="john@example.com", phone="+62 812-3333-4444")

    def found(**body) -> list[str]:
        response = api.post(SEARCH, body, format="json")
        assert response.status_code == 200, response.json()
        return [c["id"] for c in response.json()["results"]]

    assert found(email="JANE@example.com") == [str(jane.pk)]
    assert found(phone="081211112222") == [str(jane.pk)]
    assert found(email="jane@example.com", phone="081211112222") == [str(jane.pk)]
    assert found(email="jane@example.com", phone="081233334444") == []
    assert found(email="nobody@example.com") == []
    assert found(email="not an address") == []
    listed = api.get(URL).json()
    assert listed["next"] is None
    assert len(listed["results"]) == 2


def test_a_search_answers_a_page_like_the_list(api):
    first = make_customer(phone="+62 812-1111-2222")
    second = make_customer(phone="+62 812-1111-2222")
    response = api.post(
        f"{SEARCH}?page_size=1", {"phone": "081211112222"}, format="json"
    )
    body = response.json()
    assert set(body) == {"next", "results"}
    assert len(body["results"]) == 1
    # The next page is the same POST with the `cursor` given: no value in the link.
    link = body["next"]
    assert link.startswith("http://testserver/api/v1/customers/search/?")
    assert "page_size=1" in link
    assert "cursor=" in link
    assert "1211112222" not in link
    seen = [row["id"] for row in body["results"]]
    while link:
        page = api.post(link, {"phone": "081211112222"}, format="json").json()
        assert len(page["results"]) <= 1
        seen += [row["id"] for row in page["results"]]
        link = page["next"]
    assert sorted(seen) == sorted([str(first.pk), str(second.pk)])


@pytest.mark.parametrize(
    "query",
    [
        {"email": "jane@example.com"},
        {"phone": "+6281211112222"},
        {"email": "", "page": "1"},
    ],
)
def test_a_list_url_carrying_email_or_phone_is_400_naming_the_post_route(api, query):
    make_customer(email="jane@example.com", phone="+62 812-1111-2222")
    response = api.get(URL, query)
    _assert_search_in_url_refused(response)


@pytest.mark.parametrize(
    "query", ["?email=jane%40example.com", "?phone=%2B6281211112222", "?email="]
)
def test_a_search_url_carrying_email_or_phone_is_400_even_by_post(api, query):
    """The body is where they go: one in the POST's URL is refused, not ignored."""
    make_customer(email="jane@example.com", phone="+62 812-1111-2222")
    response = api.post(
        "/api/v1/customers/search/" + query, {"phone": "+6281299990000"}, format="json"
    )
    _assert_search_in_url_refused(response)


def _assert_search_in_url_refused(response) -> None:
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "search_by_post"
    assert "POST /api/v1/customers/search/" in body["detail"]
    text = response.content.decode()
    assert "jane" not in text
    assert "1211112222" not in text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        # None: the body as a whole.
        ({}, None),
        ({"email": "", "phone": "  "}, None),
        ({"email": "x" * 250 + "@example.com"}, "email"),
        ({"phone": "1" * 40}, "phone"),
        ({"email": ["jane@example.com"]}, "email"),
    ],
)
def test_a_search_without_a_usable_value_is_400_naming_the_field(api, body, field):
    response = api.post(SEARCH, body, format="json")
    assert response.status_code == 400
    assert field in error_fields(response)
    assert "jane@example.com" not in response.content.decode()


def test_a_search_is_not_a_get(api):
    assert api.get(SEARCH).status_code == 405


def test_the_schema_documents_the_search(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/customers/search/"]["post"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]
    assert request["$ref"].endswith("/CustomerSearchInputRequest")
    fields = schema["components"]["schemas"]["CustomerSearchInputRequest"]
    assert set(fields["properties"]) == {"email", "phone"}
    page = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert page["$ref"].endswith("/PaginatedCustomerOutputList")
    shape = schema["components"]["schemas"]["PaginatedCustomerOutputList"]
    assert set(shape["properties"]) == {"next", "results"}
    # The list takes no email or phone any more, and says what it answers instead.
    listing = schema["paths"]["/api/v1/customers/"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert not names & {"email", "phone"}
    assert "400" in listing["responses"]


def test_detail_and_patch(api):
    customer = make_customer(city="Jakarta")
    detail = api.get(f"{URL}{customer.pk}/")
    assert detail.status_code == 200
    assert detail.json()["city"] == "Jakarta"

    response = api.patch(
        f"{URL}{customer.pk}/",
        {"city": "Bandung"},
        format="json",
        headers={"If-Match": detail["ETag"]},
    )
    assert response.status_code == 200
    assert response.json()["city"] == "Bandung"
    assert response["ETag"] != detail["ETag"]


def test_unknown_customer_id_is_404(api):
    response = api.get(f"{URL}00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email@"),
        ("phone", "555-not-a-phone"),
        ("date_of_birth", "31/02/1990"),
        ("country", "ZZ"),
        ("region", "US-CA"),
        ("notes", "card 4111 1111 1111 1111"),
        ("national_id", "4111-1111-1111-1111"),
    ],
)
def test_invalid_fields_get_400_naming_the_field_without_echoing(api, field, value):
    response = api.post(URL, payload(**{field: value}), format="json")
    assert response.status_code == 400
    assert field in error_fields(response)
    assert value not in response.content.decode()
    assert not Customer.objects.exists()


def test_card_numbers_get_the_card_message(api):
    response = api.post(URL, payload(notes="4111111111111111"), format="json")
    assert response.status_code == 400
    assert error_code(response) == "card_number"
    [message] = error_fields(response)["notes"]
    assert "Card numbers must not be stored here" in message


def test_duplicate_email_is_409(api):
    make_customer(email="dup@example.com")
    response = api.post(URL, payload(email="dup@example.com"), format="json")
    assert response.status_code == 409
    assert error_code(response) == "customer_conflict"
    assert "email" in error_fields(response)


def test_reveal_returns_full_values_with_a_reason(api):
    customer = make_customer(email="jane@example.com")
    response = api.post(
        f"{URL}{customer.pk}/reveal/",
        {"fields": ["email"], "reason": "Customer asked for a callback"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["values"] == {"email": "jane@example.com"}
    assert response.json()["expires_at"]
    assert AuditEvent.objects.filter(action="reveal.opened").count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fields": ["email"], "reason": "too short"}, "reason"),
        ({"fields": ["email"]}, "reason"),
        # Nested fields are dotted: the first entry of `fields`.
        ({"fields": ["secret"], "reason": "a long enough reason"}, "fields.0"),
        ({"fields": [], "reason": "a long enough reason"}, "fields"),
    ],
)
def test_reveal_refusals_are_400_naming_the_field(api, body, field):
    customer = make_customer()
    response = api.post(f"{URL}{customer.pk}/reveal/", body, format="json")
    assert response.status_code == 400
    assert field in error_fields(response)
    assert not AuditEvent.objects.filter(action__startswith="reveal.").exists()


def test_close_and_erase(api):
    customer = make_customer(email="gone@example.com")
    closed = api.post(f"{URL}{customer.pk}/close/")
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"

    erased = api.post(f"{URL}{customer.pk}/erase/")
    assert erased.status_code == 200
    assert erased.json()["erased"] is True
    assert erased.json()["email"] == "[erased]"
    search = api.post(SEARCH, {"email": "gone@example.com"}, format="json")
    assert search.json() == {"next": None, "results": []}
    assert api.post(f"{URL}{customer.pk}/erase/").status_code == 409


def test_tampered_ciphertext_is_a_clear_error_not_a_500(api):
    from django.db import connection

    customer = make_customer()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers_customer SET email = full_name WHERE id = %s",
            [customer.pk.hex],
        )
    response = api.get(f"{URL}{customer.pk}/")
    assert response.status_code == 409
    assert response.json()["code"] == "integrity_error"


@pytest.mark.parametrize("role", [Role.CUSTOMER])
def test_customers_get_403_on_the_staff_api(role):
    customer = make_customer()
    client = APIClient()
    client.force_authenticate(UserFactory(username=f"x-{role}", role=role))
    calls = [
        ("get", URL, None),
        ("post", URL, payload()),
        ("get", f"{URL}{customer.pk}/", None),
        ("patch", f"{URL}{customer.pk}/", {"city": "X"}),
        (
            "post",
            f"{URL}{customer.pk}/reveal/",
            {"fields": ["email"], "reason": "x" * 12},
        ),
        ("post", f"{URL}{customer.pk}/close/", None),
        ("post", f"{URL}{customer.pk}/erase/", None),
    ]
    for method, url, body in calls:
        response = getattr(client, method)(url, body, format="json")
        assert response.status_code == 403, (method, url)
    assert Customer.objects.get(pk=customer.pk).status == "active"


def test_anonymous_gets_401():
    assert APIClient().get(URL).status_code == 401
