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


def test_seed_demo_shares_some_customers_data_with_the_recipients_once(settings):
    from apps.audit.models import AuditEvent
    from apps.consent.models import ConsentEvent
    from apps.customers.selectors import customer_find_by_email
    from apps.inventory.models import Recipient, ShareRecord

    settings.DEBUG = True
    call_command("seed_demo", customers=12, seed=5, verbosity=0)
    siti = customer_find_by_email(email="siti.rahma@example.com")
    partner = Recipient.objects.get(name="Marketing partner")
    courier = Recipient.objects.get(name="Delivery partner")
    shares = ShareRecord.objects.filter(allowed=True)
    assert shares.filter(recipient=partner, customer_id=siti.pk).exists()
    # The demo customer and four more agreed to partner sharing; the delivery
    # agent's three deliveries went to the delivery partner.
    assert shares.filter(recipient=partner).count() == 5
    assert shares.filter(recipient=courier).count() == 3
    assert not ShareRecord.objects.filter(allowed=False).exists()
    state = (
        ShareRecord.objects.count(),
        ConsentEvent.objects.count(),
        AuditEvent.objects.filter(action__startswith="data.share").count(),
    )
    assert state == (8, 3 + 4, 8)  # Siti's three choices, four grants

    call_command("seed_demo", verbosity=0)
    assert (
        ShareRecord.objects.count(),
        ConsentEvent.objects.count(),
        AuditEvent.objects.filter(action__startswith="data.share").count(),
    ) == state


def test_demo_shares_keep_a_customer_s_own_answer(privacy_admin, delivery_agent):
    from apps.consent.models import Purpose
    from apps.consent.selectors import consent_granted_for_customer
    from apps.demo.inventory import demo_shares_ensure
    from apps.inventory.models import ShareRecord
    from tests.consent.factories import consent_answer
    from tests.customers.factories import make_customer

    agrees, refused = make_customer(), make_customer()
    consent_answer(refused, "partner_sharing", granted=False)
    demo = make_customer()
    consent_answer(demo, "partner_sharing")
    shared = demo_shares_ensure(
        actor=privacy_admin, demo_customer=demo, courier=delivery_agent, count=2
    )
    assert shared == 2
    assert set(ShareRecord.objects.values_list("customer_id", "allowed")) == {
        (agrees.pk, True),
        (demo.pk, True),
    }
    purpose = Purpose.objects.get(code="partner_sharing")
    assert not consent_granted_for_customer(customer=refused, purpose=purpose)
    again = demo_shares_ensure(
        actor=privacy_admin, demo_customer=demo, courier=delivery_agent, count=2
    )
    assert again == 0


def test_seed_demo_prints_the_sign_in_links_on_the_public_url(capsys, settings):
    """`make run PORT=8001` sets AMANAH_PUBLIC_URL to the port it serves on: the links
    seed_demo prints follow it, never a fixed 8000."""
    settings.DEBUG = True
    settings.AMANAH_PUBLIC_URL = "http://127.0.0.1:8001"
    call_command("seed_demo", verbosity=0)
    out = capsys.readouterr().out
    assert "http://127.0.0.1:8001/accounts/login/" in out
    assert "http://127.0.0.1:8001/me/login/" in out
    assert ":8000" not in out


def test_the_demo_breach_is_told_in_each_language(privacy_admin):
    from apps.demo.incidents import demo_incidents_ensure
    from apps.incidents.models import Incident, IncidentText

    demo_incidents_ensure(actor=privacy_admin)
    breach = Incident.objects.get(kind="suspected_breach")
    texts = IncidentText.objects.filter(incident=breach)
    assert sorted(texts.values_list("language", flat=True)) == ["de", "fa", "id"]
    assert "Passwort" in texts.get(language="de").what_you_can_do
