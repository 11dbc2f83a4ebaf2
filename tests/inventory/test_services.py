import pytest
from django.core import mail

from apps.audit.models import AuditEvent
from apps.inventory.models import ChangeNotice, Recipient, ShareRecord
from apps.inventory.services import SharingRefused, data_share, inventory_save
from apps.inventory.tasks import change_notice_send_task
from tests.consent.factories import consent_answer
from tests.customers.factories import make_customer
from tests.inventory.factories import partner_save
from tests.mail import flaky_mail

pytestmark = pytest.mark.django_db


def test_sharing_without_the_gating_consent_is_refused_and_recorded(privacy_admin):
    partner = Recipient.objects.get(name="Marketing partner")
    customer = make_customer()
    with pytest.raises(SharingRefused):
        data_share(actor=privacy_admin, recipient=partner, customer=customer)
    assert ShareRecord.objects.get().allowed is False
    assert AuditEvent.objects.filter(action="data.share_refused").count() == 1

    consent_answer(customer, "partner_sharing")
    assert data_share(actor=privacy_admin, recipient=partner, customer=customer).allowed


def test_a_recipient_change_notifies_exactly_the_affected_customers_once(
    privacy_admin, django_capture_on_commit_callbacks
):
    agreed = make_customer(email="agreed@example.com")
    make_customer(email="never@example.com")
    consent_answer(agreed, "partner_sharing")
    with django_capture_on_commit_callbacks(execute=True):
        # A new country: customers must hear of it.
        partner = partner_save(privacy_admin, country="US")
    assert [m.to for m in mail.outbox] == [["agreed@example.com"]]
    notice = ChangeNotice.objects.get()
    change_notice_send_task.delay(notice.pk)  # a rerun tells nobody twice
    assert len(mail.outbox) == 1
    with django_capture_on_commit_callbacks(execute=True):  # no widening: no notice
        inventory_save(
            actor=privacy_admin,
            model=Recipient,
            name=partner.name,
            data={"country": "US", "data_categories": partner.data_categories},
        )
    assert len(mail.outbox) == 1


@pytest.fixture
def partner_moved(privacy_admin):
    """Three customers who agreed to partner sharing, and the change notice of their
    partner's move to a new country (its emails not sent yet: a worker sends them
    after the commit). Returns the notice and the customers."""
    people = [make_customer(email=f"p{n}@example.com") for n in range(3)]
    for person in people:
        consent_answer(person, "partner_sharing")
    partner_save(privacy_admin, country="US")
    return ChangeNotice.objects.get(), people


def test_a_mail_server_that_drops_the_connection_loses_no_change_notice(
    partner_moved, settings
):
    notice, people = partner_moved
    flaky_mail(settings, 2)  # the second email fails once
    # As a worker runs it: Celery retries after the passing failure.
    change_notice_send_task.apply(args=(notice.pk,), throw=False)
    assert sorted(m.to[0] for m in mail.outbox) == [p.email for p in people]
    notice.refresh_from_db()
    assert notice.sent_count == 3


def test_an_address_the_mail_server_refuses_for_good_holds_up_no_change_notice(
    partner_moved, settings
):
    notice, people = partner_moved
    flaky_mail(settings, refuse=(people[0].email,))
    assert change_notice_send_task.apply(args=(notice.pk,), throw=False).successful()
    assert sorted(m.to[0] for m in mail.outbox) == [p.email for p in people[1:]]


def test_removing_a_consent_gate_creates_no_change_notice(
    privacy_admin, django_capture_on_commit_callbacks
):
    # What the inventory page and the README say: only new, new country or more
    # categories tell customers; a gate dropped tells no one.
    make_customer(email="never@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        partner = partner_save(privacy_admin, gating_purpose=None)
    assert Recipient.objects.get(name=partner.name).gating_purpose is None
    assert not ChangeNotice.objects.exists()
    assert not mail.outbox


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_share_waits_for_a_restriction_being_placed_and_is_refused():
    """The restriction is read under the customer's row lock: a share started while
    a restriction is being placed waits for it, then sees it."""
    import threading
    import time

    from django.db import connection, transaction

    from apps.customers.services import customer_restrict
    from tests.accounts.factories import UserFactory
    from tests.consent.factories import reseed_purposes

    reseed_purposes()  # a transactional test may start after another one's flush
    admin = UserFactory(username="admin", role="privacy_admin")
    customer = make_customer()
    recipient = Recipient.objects.create(
        name="Courier", purpose="Deliveries", country="ID", gating_purpose=None
    )
    placed, release = threading.Event(), threading.Event()
    outcome: list[object] = []

    def restricting() -> None:
        try:
            with transaction.atomic():
                customer_restrict(
                    actor=admin,
                    customer=customer,
                    purpose="Legal claims: a dispute in court",
                    source="staff",
                )
                placed.set()
                release.wait(10)
        finally:
            connection.close()

    def sharing() -> None:
        try:
            outcome.append(
                data_share(actor=admin, recipient=recipient, customer=customer)
            )
        except Exception as exc:
            outcome.append(exc)
        finally:
            connection.close()

    first = threading.Thread(target=restricting)
    first.start()
    assert placed.wait(10)
    second = threading.Thread(target=sharing)
    second.start()
    time.sleep(0.5)
    release.set()
    first.join()
    second.join()
    assert isinstance(outcome[0], SharingRefused)
    assert outcome[0].code == "restricted"
    assert not ShareRecord.objects.filter(allowed=True).exists()
