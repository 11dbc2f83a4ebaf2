import pytest
from django.urls import reverse

from apps.accounts.models import Role
from apps.accounts.services import user_ensure_staff
from apps.customers.selectors import customer_get
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:customers_customer_changelist")
FIND = reverse("admin:customers_customer_find")


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


def test_find_by_exact_email_or_phone_is_a_post_through_the_blind_index(admin_client):
    jane = make_customer(email="jane@example.com", phone="+62 812-1111-2222")
    make_customer(email="john@example.com", phone="+62 812-3333-4444")
    for body in ({"email": "JANE@example.com"}, {"phone": "0812 1111 2222"}):
        response = admin_client.post(FIND, body)
        assert response.status_code == 200  # answered on the page: no redirect
        html = response.content.decode()
        change = reverse("admin:customers_customer_change", args=[jane.pk])
        assert f'href="{change}"' in html  # the change page, by id only
        assert "j•••@example.com" in html
        assert "jane@example.com" not in html.replace('value="JANE@example.com"', "")
        assert "•••• 4444" not in html
    html = admin_client.post(FIND, {"email": "nobody@example.com"}).content.decode()
    assert "No customer matches exactly." in html


def test_the_find_page_is_a_post_form_linked_from_the_changelist(admin_client):
    changelist = admin_client.get(CHANGELIST).content.decode()
    assert f'href="{FIND}"' in changelist
    html = admin_client.get(FIND).content.decode()
    form = html[html.index(f'action="{FIND}"') - 40 :]
    form = form[: form.index("</form>")]
    assert 'method="post"' in form
    assert 'name="csrfmiddlewaretoken"' in form


def test_find_without_a_value_is_400(admin_client):
    response = admin_client.post(FIND, {"email": "", "phone": ""})
    assert response.status_code == 400
    assert "Enter an email address or a phone number." in response.content.decode()


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (CHANGELIST, {"q": "jane@example.com"}),
        (CHANGELIST, {"q": "0812 1111 2222"}),
        (CHANGELIST, {"q": "+6281211112222"}),
        (CHANGELIST, {"q": "Jane Doe"}),
        (FIND, {"email": "jane@example.com"}),
        (FIND, {"phone": "0812 1111 2222"}),
    ],
)
def test_an_email_or_phone_in_an_admin_url_is_400_naming_the_post_search(
    admin_client, path, query
):
    make_customer(email="jane@example.com", phone="+62 812-1111-2222")
    response = admin_client.get(path, query)
    assert response.status_code == 400
    _assert_names_the_post_search(response)


def test_an_email_in_the_find_forms_url_is_400_even_by_post(admin_client):
    """The form's body is where they go: one in its URL is refused, not ignored."""
    make_customer(email="jane@example.com", phone="+62 812-1111-2222")
    response = admin_client.post(
        FIND + "?email=jane%40example.com", {"phone": "0812 9999 0000"}
    )
    assert response.status_code == 400
    _assert_names_the_post_search(response)


def _assert_names_the_post_search(response) -> None:
    html = response.content.decode()
    assert "Find by email or phone" in html or "use this form" in html
    assert f'action="{FIND}"' in html
    assert 'method="post"' in html
    assert "jane" not in html.lower()
    assert "1111" not in html


def test_the_changelist_has_no_search_box_to_type_an_email_into(admin_client):
    """A GET box sends whatever is typed in it in the URL: the list has none; the
    find page's POST form is linked instead."""
    html = admin_client.get(CHANGELIST).content.decode()
    assert 'name="q"' not in html
    assert f'href="{FIND}"' in html


@pytest.mark.parametrize(
    ("path", "query"),
    [
        (FIND, {"email": "jane@example.com"}),
        (CHANGELIST, {"q": "jane@example.com"}),
        (CHANGELIST, {"q": "+62 812-1111-2222"}),
    ],
)
def test_signing_in_to_the_admin_keeps_the_query_out_of_next(client, path, query):
    response = client.get(path, query)
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(reverse("admin:login"))
    assert "jane" not in location
    assert "1111" not in location
    assert location.endswith("?next=" + path)


def test_the_changelist_still_finds_a_customer_by_id(admin_client):
    jane = make_customer()
    other = make_customer()
    for term in (str(jane.pk), jane.pk.hex.upper()):
        response = admin_client.get(CHANGELIST, {"q": term})
        assert response.status_code == 200
        html = response.content.decode()
        assert str(jane.pk) in html
        assert str(other.pk) not in html


def test_only_the_admins_view_permission_opens_the_find_page(client):
    from tests.accounts.factories import UserFactory

    staff = UserFactory(username="no-perms", role=Role.PRIVACY_ADMIN, is_staff=True)
    sign_in(client, staff)
    assert client.get(FIND).status_code == 403
    assert client.post(FIND, {"email": "jane@example.com"}).status_code == 403


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


def test_the_users_search_box_takes_usernames_only(admin_client):
    """Staff names and email addresses stay out of the URL's `?q=` too."""
    from apps.accounts.admin import UserAdmin

    assert UserAdmin.search_fields == ("username",)
    html = admin_client.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert "A username." in html
