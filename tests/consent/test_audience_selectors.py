"""Whose grant counts for a purpose (what inventory asks before sharing and when a
gated recipient changes), and the audience as CSV chunks (the audience API's body)."""

import pytest

from apps.consent.models import ConsentSource, Purpose
from apps.consent.selectors import (
    audience_csv_chunks,
    consent_granted_customer_ids,
    consent_granted_for_customer,
    purpose_get_active,
)
from apps.customers.models import Customer
from apps.retention.services import customer_erase
from tests.consent.factories import consent_answer
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db

PURPOSE = "marketing_sms"


def _answer(customer, granted: bool, code: str = PURPOSE) -> None:
    consent_answer(customer, code, granted, source=ConsentSource.SELF_SERVICE)


def test_a_grant_counts_until_withdrawn():
    customer = make_customer()
    purpose = purpose_get_active(code=PURPOSE)
    assert not consent_granted_for_customer(customer=customer, purpose=purpose)

    _answer(customer, True)
    assert consent_granted_for_customer(customer=customer, purpose=purpose)

    _answer(customer, False)
    assert not consent_granted_for_customer(customer=customer, purpose=purpose)


def test_a_grant_under_an_older_notice_than_the_purpose_needs_does_not_count():
    customer = make_customer()
    _answer(customer, True)
    Purpose.objects.filter(code=PURPOSE).update(min_notice_version=99)
    purpose = purpose_get_active(code=PURPOSE)

    assert not consent_granted_for_customer(customer=customer, purpose=purpose)
    assert not consent_granted_customer_ids(purpose=purpose).exists()


def test_granted_ids_are_of_that_purpose_erased_customers_included():
    granted, withdrawn, elsewhere, erased = (make_customer() for _ in range(4))
    _answer(granted, True)
    _answer(withdrawn, True)
    _answer(withdrawn, False)
    _answer(elsewhere, True, code="analytics")
    _answer(erased, True)
    customer_erase(actor=None, customer=erased)

    ids = consent_granted_customer_ids(purpose=purpose_get_active(code=PURPOSE))

    # A subquery of customer ids: the caller's customers leave the erased out.
    assert set(Customer.objects.filter(pk__in=ids)) == {granted, erased}


def test_the_audience_csv_is_one_id_a_line_without_the_erased():
    granted, erased, withdrawn = make_customer(), make_customer(), make_customer()
    for customer in (granted, erased, withdrawn):
        _answer(customer, True)
    _answer(withdrawn, False)
    customer_erase(actor=None, customer=erased)

    chunks = audience_csv_chunks(purpose=purpose_get_active(code=PURPOSE))
    text = "".join(c.decode() if isinstance(c, bytes) else c for c in chunks)

    assert text.splitlines() == [str(granted.pk)]


@pytest.mark.postgres
def test_the_audience_is_read_from_its_index_alone():
    """Every column the audience reads is in `consent_state_granted`, so PostgreSQL can
    answer it with an index-only scan. Were one missing (the notice version, as
    before), every granted row would be a heap fetch in customer order: 7.9x a `COPY`
    of the same ids at 2,000,000 customers x 5 purposes. Scans that read the table are
    switched off here so that a tiny table shows which plans the index allows."""
    from django.db import connection

    from apps.consent.selectors import audience_copy_sql

    for _ in range(3):
        _answer(make_customer(), True)
    sql, params = audience_copy_sql(purpose=purpose_get_active(code=PURPOSE))
    select = sql[sql.index("(") + 1 : sql.rindex(") TO STDOUT")]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {select}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "Index Only Scan using consent_state_granted" in plan, plan
