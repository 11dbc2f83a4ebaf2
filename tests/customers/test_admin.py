import pytest
from django.urls import reverse

from apps.accounts.models import Role
from apps.accounts.services import user_ensure_staff
from apps.customers.selectors import customer_get
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = user_ensure_staff(
        actor=None, username="pa", role=Role.PRIVACY_ADMIN, password="long-password-1"
    )
    sign_in(client, user)
    return client


def test_changelist_shows_masked_values_only(admin_client):
    customer = make_customer(email="jane@example.com", full_name="Jane Doe")
    html = admin_client.get(
        reverse("admin:customers_customer_changelist")
    ).content.decode()
    assert "j•••@example.com" in html
    assert "J••• D•••" in html
    assert "jane@example.com" not in html
    assert "Jane Doe" not in html
    assert str(customer.pk) in html


def test_detail_page_never_shows_values_or_ciphertext(admin_client):
    customer = make_customer(email="jane@example.com", notes="Prefers mornings")
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    html = admin_client.get(url).content.decode()
    assert "j•••@example.com" in html
    assert "jane@example.com" not in html
    assert "Prefers mornings" not in html
    assert "&lt;sealed&gt;" not in html
    assert "\\x01" not in html


def test_search_by_exact_email_or_phone_uses_the_blind_index(admin_client):
    jane = make_customer(email="jane@example.com", phone="+62 812-1111-2222")
    make_customer(email="john@example.com", phone="+62 812-3333-4444")
    url = reverse("admin:customers_customer_changelist")
    for term in ("JANE@example.com", "0812 1111 2222"):
        html = admin_client.get(url, {"q": term}).content.decode()
        assert str(jane.pk) in html
        assert "j•••@example.com" in html
        assert "•••• 4444" not in html


def test_erase_action_goes_through_the_service(admin_client):
    customer = make_customer(email="gone@example.com")
    admin_client.post(
        reverse("admin:customers_customer_changelist"),
        {"action": "erase_customers", "_selected_action": [str(customer.pk)]},
    )
    assert customer_get(customer_id=customer.pk).is_erased


def test_a_tampered_value_shows_as_an_integrity_error(admin_client):
    from django.db import connection

    customer = make_customer()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers_customer SET email = city WHERE id = %s",
            [customer.pk.hex],
        )
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    response = admin_client.get(url)
    assert response.status_code == 200
    assert "integrity error" in response.content.decode()
