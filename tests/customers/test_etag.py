"""A customer's version (ETag) and `customer_update(if_match=...)`: a change names
the version it was made on, and is refused (412) once the customer has changed."""

from collections.abc import Callable

import pytest

from apps.accounts.models import Role
from apps.audit.models import AuditEvent
from apps.core.errors import PreconditionFailed
from apps.crypto.fields import EncryptedTextField
from apps.customers.models import Customer
from apps.customers.selectors import customer_etag, customer_get
from apps.customers.services import customer_close, customer_update
from apps.retention.services import customer_erase
from tests.accounts.factories import UserFactory
from tests.concurrency import at_once
from tests.customers.factories import make_customer


def _fresh(customer: Customer) -> Customer:
    return customer_get(customer_id=customer.pk)


@pytest.mark.django_db
def test_the_tag_is_the_same_for_every_read_of_one_version(privacy_admin):
    customer = make_customer()
    assert customer_etag(customer) == customer_etag(_fresh(customer))
    updated = customer_update(
        actor=privacy_admin, customer=customer, data={"city": "Bandung"}
    )
    # What the change answers with is what the next read says.
    assert customer_etag(updated) == customer_etag(_fresh(customer))


@pytest.mark.django_db
def test_the_tag_is_computed_without_decrypting(monkeypatch):
    customer = _fresh(make_customer())

    def refuse(*args, **kwargs):
        raise AssertionError("decrypted")

    monkeypatch.setattr(EncryptedTextField, "open", refuse)
    customer_etag(customer)
    deferred = Customer.objects.defer("email", "status").get(pk=customer.pk)
    assert customer_etag(deferred) == customer_etag(customer)


@pytest.mark.django_db
def test_a_value_set_and_not_saved_has_no_tag():
    customer = _fresh(make_customer())
    customer.email = "someone@example.com"
    with pytest.raises(ValueError, match="email was changed and not saved"):
        customer_etag(customer)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        lambda actor, c: customer_update(actor=actor, customer=c, data={"notes": "x"}),
        lambda actor, c: customer_update(actor=actor, customer=c, data={"region": ""}),
        lambda actor, c: customer_close(actor=actor, customer=c),
        lambda actor, c: customer_erase(actor=actor, customer=c),
    ],
    ids=["sealed field", "plain field", "close", "erase"],
)
def test_every_change_of_the_row_changes_the_tag(privacy_admin, change):
    customer = make_customer()
    before = customer_etag(_fresh(customer))
    change(privacy_admin, _fresh(customer))
    assert customer_etag(_fresh(customer)) != before


@pytest.mark.django_db
@pytest.mark.parametrize("form", ["{tag}", '"other", {tag}', "*"])
def test_an_update_naming_the_current_version_is_made(privacy_admin, form):
    customer = make_customer()
    tag = customer_etag(customer)

    updated = customer_update(
        actor=privacy_admin,
        customer=customer,
        data={"city": "Bandung"},
        if_match=form.format(tag=tag),
    )

    assert _fresh(customer).city == "Bandung"
    assert customer_etag(updated) != tag


@pytest.mark.django_db
def test_an_update_naming_an_old_version_is_412_and_changes_nothing(privacy_admin):
    customer = make_customer(city="Jakarta")
    stale = customer_etag(customer)
    customer_update(actor=privacy_admin, customer=customer, data={"notes": "called"})
    before = AuditEvent.objects.count()

    with pytest.raises(PreconditionFailed, match="changed since you read it") as raised:
        customer_update(
            actor=privacy_admin,
            customer=customer,
            data={"city": "Bandung"},
            if_match=stale,
        )

    assert raised.value.status == 412
    assert raised.value.code == "stale"
    assert _fresh(customer).city == "Jakarta"
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_a_weak_tag_never_matches(privacy_admin):
    customer = make_customer(city="Jakarta")
    with pytest.raises(PreconditionFailed):
        customer_update(
            actor=privacy_admin,
            customer=customer,
            data={"city": "Bandung"},
            if_match=f"W/{customer_etag(customer)}",
        )
    assert _fresh(customer).city == "Jakarta"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_updates_at_once_with_one_tag_make_one_change():
    """Each with a connection of its own, as two web processes: the tag is compared
    under the row lock, so the second sees the first's version."""
    admin = UserFactory(username="admin", role=Role.PRIVACY_ADMIN)
    customer = make_customer(city="Jakarta")
    tag = customer_etag(customer)

    def update(city: str) -> Callable[[], object]:
        return lambda: customer_update(
            actor=admin, customer=customer, data={"city": city}, if_match=tag
        )

    results = at_once([update("Bandung"), update("Surabaya")])

    refused = [r for r in results if isinstance(r, PreconditionFailed)]
    made = [r for r in results if isinstance(r, Customer)]
    assert (len(refused), len(made)) == (1, 1), results
    assert _fresh(customer).city == made[0].city
    assert AuditEvent.objects.filter(action="customer.updated").count() == 1
