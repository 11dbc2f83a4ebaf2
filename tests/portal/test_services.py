"""customer_account_enable: a customer's login for the self-service pages."""

import pytest

from apps.accounts.models import Role, User
from apps.audit.models import AuditEvent
from apps.portal.services import PortalError, customer_account_enable
from apps.retention.services import customer_erase
from tests.customers.factories import make_customer
from tests.portal.factories import PASSWORD

pytestmark = pytest.mark.django_db

NUMERIC = "8120457736019"


def test_enable_gives_the_customer_an_active_login_with_the_password():
    customer = make_customer(email="siti@example.com")
    user = customer_account_enable(actor=None, customer=customer, password=PASSWORD)
    customer.refresh_from_db()
    assert customer.user == user
    assert (user.username, user.role, user.is_active) == (
        f"c-{customer.pk}",
        Role.CUSTOMER,
        True,
    )
    assert user.check_password(PASSWORD)
    assert AuditEvent.objects.filter(action="customer.account_enabled").count() == 1


def test_enabling_again_resets_the_password_of_the_same_login():
    customer = make_customer(email="siti@example.com")
    first = customer_account_enable(actor=None, customer=customer, password=PASSWORD)
    again = customer_account_enable(
        actor=None, customer=customer, password="another-long-password-88"
    )
    assert again.pk == first.pk
    assert again.check_password("another-long-password-88")
    assert User.objects.filter(role=Role.CUSTOMER).count() == 1


def test_enable_refuses_a_weak_password_on_its_field_and_writes_nothing():
    customer = make_customer(email="siti@example.com")
    with pytest.raises(PortalError) as refused:
        customer_account_enable(actor=None, customer=customer, password=NUMERIC)
    assert refused.value.field == "password"
    assert refused.value.code == "portal_invalid"
    assert "This password is entirely numeric." in refused.value.message
    assert NUMERIC not in refused.value.message
    customer.refresh_from_db()
    assert customer.user is None
    assert not User.objects.exists()
    assert not AuditEvent.objects.filter(action="customer.account_enabled").exists()


def test_enable_refuses_an_erased_customer(privacy_admin):
    customer = make_customer(email="siti@example.com")
    customer_erase(actor=privacy_admin, customer=customer)
    with pytest.raises(PortalError, match="This customer was erased"):
        customer_account_enable(actor=None, customer=customer, password=PASSWORD)
    assert not User.objects.filter(role=Role.CUSTOMER).exists()
