"""Legal holds stop every erasure, not only the disposal engine: the API's and the
admin's "Erase", a customer's erasure request; and a hold placed while an erasure runs
is never lost (PostgreSQL, real concurrency)."""

import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import Role
from apps.accounts.services import user_ensure_staff
from apps.audit.models import AuditEvent
from apps.customers.selectors import customer_get
from apps.customers.services import customer_close
from apps.retention.errors import HoldConflict
from apps.retention.services import customer_erase, hold_place, hold_release
from tests.accounts.helpers import sign_in
from tests.consent.factories import reseed_purposes
from tests.customers.factories import make_customer

REASON = "Court order 12/2026, keep all records"


def _erased_events(customer) -> int:
    return AuditEvent.objects.filter(
        action="customer.erased", target_id=str(customer.pk)
    ).count()


@pytest.mark.django_db
def test_the_api_refuses_to_erase_a_held_customer_and_writes_nothing(privacy_admin):
    customer = make_customer(email="held@example.com")
    hold_place(actor=privacy_admin, customer=customer, reason=REASON)
    api = APIClient()
    api.force_authenticate(privacy_admin)
    response = api.post(f"/api/v1/customers/{customer.pk}/erase/")
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "legal_hold"
    assert "legal hold" in body["detail"]
    assert "Court order" not in response.content.decode()  # the reason stays private
    assert customer_get(customer_id=customer.pk).email == "held@example.com"
    assert _erased_events(customer) == 0


@pytest.mark.django_db
def test_the_admin_erase_action_refuses_a_held_customer_with_a_message(client):
    admin = user_ensure_staff(
        actor=None, username="pa", role=Role.PRIVACY_ADMIN, password="long-password-1"
    )
    sign_in(client, admin)
    held = make_customer(email="held@example.com")
    free = make_customer(email="free@example.com")
    hold_place(actor=admin, customer=held, reason=REASON)
    response = client.post(
        reverse("admin:customers_customer_changelist"),
        {
            "action": "erase_customers",
            "_selected_action": [str(held.pk), str(free.pk)],
        },
        follow=True,
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "A legal hold applies to this customer" in html
    assert "Court order" not in html
    assert customer_get(customer_id=held.pk).email == "held@example.com"
    assert customer_get(customer_id=free.pk).is_erased


@pytest.mark.django_db
def test_erase_refuses_a_held_customer_until_the_hold_is_released(privacy_admin):
    customer = make_customer(email="held@example.com")
    hold = hold_place(actor=privacy_admin, customer=customer, reason=REASON)
    with pytest.raises(HoldConflict, match="legal hold") as refused:
        customer_erase(actor=privacy_admin, customer=customer)
    assert refused.value.code == "legal_hold"
    assert "Court order" not in str(refused.value)
    assert not customer_get(customer_id=customer.pk).is_erased
    assert _erased_events(customer) == 0
    hold_release(actor=privacy_admin, hold=hold)
    assert customer_erase(actor=privacy_admin, customer=customer).is_erased


@pytest.mark.django_db
def test_a_hold_that_has_ended_no_longer_stops_erase(privacy_admin):
    customer = make_customer()
    hold = hold_place(
        actor=privacy_admin,
        customer=customer,
        reason=REASON,
        ends_at=timezone.now() + timedelta(days=1),
    )
    type(hold).objects.filter(pk=hold.pk).update(
        ends_at=timezone.now() - timedelta(minutes=1)
    )
    assert customer_erase(actor=privacy_admin, customer=customer).is_erased


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("covers", "closed", "refused"),
    [
        ("customer_pii", False, True),  # every customer's personal data
        ("closed_accounts", True, True),
        ("closed_accounts", False, False),  # an open account is no closed account
        ("access_log", False, False),  # erasure leaves the access log alone
    ],
)
def test_a_hold_on_a_kind_of_record_stops_erasing_what_it_covers(
    privacy_admin, covers, closed, refused
):
    customer = make_customer()
    if closed:
        customer = customer_close(actor=privacy_admin, customer=customer)
    hold_place(actor=privacy_admin, covers=covers, reason=REASON)
    if refused:
        with pytest.raises(HoldConflict):
            customer_erase(actor=privacy_admin, customer=customer)
        assert not customer_get(customer_id=customer.pk).is_erased
    else:
        assert customer_erase(actor=privacy_admin, customer=customer).is_erased


@pytest.mark.django_db
def test_an_inactive_customers_hold_stops_erasing_a_customer_due_as_inactive(
    privacy_admin,
):
    from apps.customers.models import Customer

    idle, active = make_customer(), make_customer()
    Customer.objects.filter(pk=idle.pk).update(
        last_activity_at=timezone.now() - timedelta(days=4 * 365)
    )
    hold_place(actor=privacy_admin, covers="inactive_customers", reason=REASON)
    with pytest.raises(HoldConflict):
        customer_erase(actor=privacy_admin, customer=idle)
    assert customer_erase(actor=privacy_admin, customer=active).is_erased


# Which code may destroy customer data without asking about holds.
SHREDDERS = {
    # the one erase, after the hold check
    "customer_shred(": {"apps/retention/services.py"},
    # the disposal engine, whose due query leaves held rows out; and reapplying the
    # erasure journal after a restore (each erasure happened already, holds or not)
    "customers_shred_bulk(": {
        "apps/retention/scopes.py",
        "apps/customers/services.py",
    },
    "customers_delete_bulk(": {
        "apps/retention/scopes.py",
        "apps/customers/services.py",
    },
    # the customers service's own primitives; and keys that never sealed a customer's
    # record: an import upload's (once imported) and a webhook endpoint's secret's
    "data_key_destroy(": {
        "apps/customers/services.py",
        "apps/imports/services.py",
        "apps/webhooks/services.py",
    },
    "data_keys_destroy_bulk(": {"apps/customers/services.py"},
}


def test_only_the_hold_checking_paths_destroy_customer_data():
    root = Path(__file__).resolve().parents[2]
    found: dict[str, set[str]] = {name: set() for name in SHREDDERS}
    for path in (root / "apps").rglob("*.py"):
        text = path.read_text()
        for name in SHREDDERS:
            # A call, not the definition.
            if re.search(rf"(?<!def ){re.escape(name)}", text):
                found[name].add(str(path.relative_to(root)))
    assert found == SHREDDERS


# Real concurrency (PostgreSQL): one connection per thread.


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_hold_placed_while_an_erase_runs_is_never_lost(monkeypatch):
    """The erase has looked for holds and found none; a hold is placed before the
    erase commits. Either the hold waits for the erase (and is recorded after it), or
    the erase sees the hold: never a hold recorded before an erasure it did not stop."""
    from django.db import connection

    from apps.retention import services
    from tests.accounts.factories import UserFactory

    reseed_purposes()
    admin = UserFactory(username="pa-race", role=Role.PRIVACY_ADMIN)
    customer = make_customer()
    checked, placed = threading.Event(), threading.Event()
    real_check = services.hold_covering_customer

    def check_then_linger(**kwargs):
        found = real_check(**kwargs)
        checked.set()
        placed.wait(timeout=3)  # the hold is placed now, unless it has to wait
        return found

    monkeypatch.setattr(services, "hold_covering_customer", check_then_linger)
    outcome: dict[str, object] = {}

    def erase() -> None:
        try:
            outcome["erase"] = services.customer_erase(actor=admin, customer=customer)
        except Exception as exc:
            outcome["erase"] = exc
        finally:
            connection.close()

    def hold() -> None:
        try:
            checked.wait(timeout=10)
            outcome["hold"] = services.hold_place(
                actor=admin, customer=customer, reason=REASON
            )
        except Exception as exc:
            outcome["hold"] = exc
        finally:
            placed.set()
            connection.close()

    threads = [threading.Thread(target=erase), threading.Thread(target=hold)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not isinstance(outcome["hold"], Exception), outcome["hold"]
    erased = customer_get(customer_id=customer.pk).is_erased
    events = {
        e.action: e.seq
        for e in AuditEvent.objects.filter(
            action__in=["customer.erased", "legal_hold.placed"]
        )
    }
    if erased:
        # The erasure came first: the hold was placed on what it left.
        assert events["legal_hold.placed"] > events["customer.erased"]
    else:
        assert isinstance(outcome["erase"], HoldConflict)
