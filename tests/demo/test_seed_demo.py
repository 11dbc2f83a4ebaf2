"""`seed_demo`: demo users, the customer who signs in, synthetic customers."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.accounts.models import Role, User

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_each_staff_role_idempotently(capsys, settings):
    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")
    roles = dict(
        User.objects.exclude(role=Role.CUSTOMER).values_list("username", "role")
    )
    assert roles == {
        "support": Role.SUPPORT_AGENT,
        "delivery": Role.DELIVERY_AGENT,
        "compliance": Role.COMPLIANCE_OFFICER,
        "privacy_admin": Role.PRIVACY_ADMIN,
    }
    out = capsys.readouterr().out
    assert "/accounts/login/" in out
    assert "privacy_admin" in out
    assert "/me/login/" in out
    assert User.objects.filter(role=Role.CUSTOMER).count() == 1  # the demo customer


def test_seed_demo_refuses_a_short_password():
    with pytest.raises(CommandError, match="at least 12"):
        call_command("seed_demo", password="short")
    assert not User.objects.exists()


def test_seed_demo_needs_an_explicit_password_in_production(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="--password is required"):
        call_command("seed_demo")


def test_seed_demo_adds_valid_synthetic_customers_in_several_countries(settings):
    from apps.customers.models import Customer, CustomerStatus
    from apps.customers.selectors import customer_list

    settings.DEBUG = True
    call_command("seed_demo", customers=30, seed=3, verbosity=0)
    assert Customer.objects.count() == 31  # and the demo customer who signs in
    assert Customer.objects.values("country").distinct().count() >= 3
    assert Customer.objects.filter(status=CustomerStatus.CLOSED).count() < 30
    customer = customer_list().first()
    assert "@" in customer.email
    assert list(customer_list(email=customer.email)) == [customer]

    call_command("seed_demo", min_customers=20, verbosity=0)  # already enough
    assert Customer.objects.count() == 31
