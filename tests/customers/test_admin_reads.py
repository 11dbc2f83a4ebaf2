"""Every look through the Django admin is in the access log, as a look through the
staff pages is: one row per customer whose values a page shows (masked), naming the
fields shown; a page that shows no personal value writes none."""

import pytest
from django.urls import reverse

from apps.access.models import AccessLogEntry, AccessPurpose
from apps.accounts.models import Role
from apps.accounts.services import user_ensure_staff
from apps.retention.services import customer_erase
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:customers_customer_changelist")
FIND = reverse("admin:customers_customer_find")


@pytest.fixture
def admin_user():
    return user_ensure_staff(
        actor=None, username="pa", role=Role.PRIVACY_ADMIN, password="long-password-1"
    )


@pytest.fixture
def admin_client(client, admin_user):
    sign_in(client, admin_user)
    return client


def _log() -> dict:
    return {e.customer_id: e for e in AccessLogEntry.objects.all()}


def test_a_changelist_read_writes_one_row_per_customer_shown(admin_client, admin_user):
    jane = make_customer(email="jane@example.com", full_name="Jane Doe")
    no_phone = make_customer(email="nophone@example.com", phone="")
    html = admin_client.get(CHANGELIST).content.decode()
    assert "j•••@example.com" in html
    log = _log()
    assert set(log) == {jane.pk, no_phone.pk}
    assert log[jane.pk].fields == {
        "full_name": "masked",
        "email": "masked",
        "phone": "masked",
    }
    assert log[no_phone.pk].fields == {"full_name": "masked", "email": "masked"}
    for entry in log.values():
        assert entry.staff == admin_user
        assert entry.staff_role == Role.PRIVACY_ADMIN
        assert entry.purpose == AccessPurpose.GOVERNANCE
        assert entry.interaction_id is None


def test_a_changelist_logs_only_the_page_it_shows(admin_client):
    customers = [make_customer() for _ in range(3)]
    admin_client.get(CHANGELIST, {"q": str(customers[1].pk)})
    assert set(_log()) == {customers[1].pk}


def test_an_erased_customer_in_the_list_shows_and_logs_nothing(admin_client):
    gone = make_customer(email="gone@example.com")
    customer_erase(actor=None, customer=gone)
    admin_client.get(CHANGELIST)
    assert not AccessLogEntry.objects.exists()


def test_the_change_page_logs_each_field_it_shows_something_of(admin_client):
    customer = make_customer(email="jane@example.com", notes="Prefers mornings")
    html = admin_client.get(
        reverse("admin:customers_customer_change", args=[customer.pk])
    ).content.decode()
    assert "j•••@example.com" in html
    [entry] = AccessLogEntry.objects.filter(customer=customer)
    # Notes show nothing masked, an address line, a token and a postal code only
    # "•••": no personal value, nothing to log.
    assert entry.fields == {
        name: "masked"
        for name in (
            "full_name",
            "email",
            "phone",
            "city",
            "date_of_birth",
            "national_id",
            "card_last4",
        )
    }
    assert entry.purpose == AccessPurpose.GOVERNANCE


def test_a_find_logs_each_match_shown_and_a_miss_logs_nothing(admin_client):
    jane = make_customer(email="jane@example.com", phone="+62 812-1111-2222")
    make_customer(email="john@example.com")
    admin_client.post(FIND, {"email": "nobody@example.com"})
    assert not AccessLogEntry.objects.exists()
    admin_client.post(FIND, {"email": "JANE@example.com"})
    [entry] = AccessLogEntry.objects.all()
    assert entry.customer_id == jane.pk
    assert entry.fields == {"full_name": "masked", "email": "masked", "phone": "masked"}
    assert entry.purpose == AccessPurpose.GOVERNANCE


def test_pages_that_show_no_customer_log_nothing(admin_client):
    make_customer()
    admin_client.get(FIND)
    admin_client.get(CHANGELIST, {"q": "jane@example.com"})  # refused: 400
    assert not AccessLogEntry.objects.exists()
