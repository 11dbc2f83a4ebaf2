"""The trail names its targets as people read them ("Customer 1f2e3d4c…", "User
account 3"), never as raw model labels, and from the event's own columns (nothing
decrypted)."""

import pytest
from django.urls import reverse

from apps.accounts.models import Role
from apps.audit import services as audit
from apps.audit.selectors import audit_target_label
from tests.accounts.factories import UserFactory
from tests.accounts.helpers import sign_in

CUSTOMER_ID = "1f2e3d4c-5b6a-4789-8abc-def012345678"


@pytest.mark.parametrize(
    ("target_type", "target_id", "label"),
    [
        ("accounts.user", "3", "User account 3"),
        ("customers.customer", CUSTOMER_ID, "Customer 1f2e3d4c…"),
        ("retention.disposallogentry", "12", "Disposal log entry 12"),
        ("access.fieldpolicy", "7", "Field policy 7"),
        ("gone.model", "5", "gone.model 5"),
        ("", "", ""),
    ],
)
def test_a_target_reads_as_its_name_and_a_short_id(target_type, target_id, label):
    assert audit_target_label(target_type=target_type, target_id=target_id) == label


@pytest.mark.django_db
def test_the_trail_page_shows_readable_targets(client, privacy_admin):
    audit.record(
        actor=privacy_admin,
        action="customer.viewed",
        target_type="customers.customer",
        target_id=CUSTOMER_ID,
    )
    audit.record(
        actor=privacy_admin,
        action="user.changed",
        target_type="accounts.user",
        target_id=str(privacy_admin.pk),
    )
    sign_in(client, privacy_admin)
    html = client.get(reverse("audit:event-list")).content.decode()
    assert ">Customer 1f2e3d4c…</span>" in html
    assert f">User account {privacy_admin.pk}</span>" in html
    assert ">accounts.user <" not in html


@pytest.mark.django_db
def test_the_trail_page_shows_actors_roles_and_details_as_people_read_them(
    client, privacy_admin
):
    customer_account = UserFactory(username=f"c-{CUSTOMER_ID}", role=Role.CUSTOMER)
    audit.record(
        actor=customer_account,
        action="request.opened",
        target_type="customers.customer",
        target_id=CUSTOMER_ID,
        details={"fields": ["email", "phone"], "kind": "access"},
    )
    agent = UserFactory(username="agent7", role=Role.SUPPORT_AGENT)
    audit.record(actor=agent, action="otp.verified", details={"fields": ["email"]})
    sign_in(client, privacy_admin)
    html = client.get(reverse("audit:event-list")).content.decode()
    # A customer actor as their target reads, not their account's long name.
    assert f"c-{CUSTOMER_ID}" not in html
    assert "Customer 1f2e3d4c…" in html.split('data-label="Actor"', 1)[1]
    # A role by its label, details as text (not Python's lists).
    assert "Support agent" in html
    assert ">support_agent<" not in html
    assert "fields: email, phone" in html
    assert "fields: email<" in html
    assert "[&#x27;" not in html
    assert "fields=" not in html
    # On a phone each event is a card, every value labelled.
    assert 'class="cards' in html
    assert 'data-label="Action"><code>otp.verified</code>' in html
