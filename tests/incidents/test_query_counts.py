"""Queueing breach notices costs a fixed number of queries per batch, however many
affected people the batch holds: the test queues for a small incident and for one ten
times larger, under the same bound."""

import pytest

from apps.incidents.models import AffectedCustomer
from apps.incidents.services import affected_select, notices_queue
from apps.retention.services import customer_erase
from tests.customers.factories import make_customer
from tests.incidents.factories import make_incident

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]

SIZES = (3, 30)


def affected_incident(actor, size: int):
    """A breach with a voucher, affecting `size` customers: a third with a compromised
    mailbox (SMS instead of email), one erased after the snapshot (set apart)."""
    incident = make_incident(
        actor, remedy_kind="voucher", remedy_description="A 20% voucher"
    )
    customers = [make_customer() for _ in range(size)]
    affected_select(
        actor=actor,
        incident=incident,
        scope="list",
        customer_ids=" ".join(str(c.pk) for c in customers),
    )
    AffectedCustomer.objects.filter(
        incident=incident, customer_id__in=[c.pk for c in customers[::3]]
    ).update(mailbox_compromised=True)
    customer_erase(actor=actor, customer=customers[-1])
    return incident


@pytest.mark.parametrize("size", SIZES)
def test_queueing_notices_does_not_grow_with_the_affected(
    privacy_admin, size, django_assert_max_num_queries
):
    incident = affected_incident(privacy_admin, size)
    # The run's advisory lock and its release (2); the texts checked first; one
    # batch in a savepoint (every affected person, under the default batch size: a
    # short batch is the last, no empty one after it): the incident's lock, the
    # batch, its texts, their data categories held, their saved languages and their
    # notices already queued; their wordings stored and their ids read (2, however
    # many wordings); remedy codes, those set apart and the notices, one statement
    # each (3); the audit event (actor, chain lock, chain head, insert); and the
    # savepoints' own statements (4, the audit's included): 22.
    with django_assert_max_num_queries(22):
        queued = notices_queue(actor=privacy_admin, incident=incident)
    assert queued == 2 * (size - 1)
