"""A notice's words are stored once per rendering (`NoticeWording`), each notice
keeping only its wording and its own remedy code (issue 22: ten million notices must
not be ten million copies of the same text)."""

import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from apps.incidents.models import (
    AffectedCustomer,
    Incident,
    IncidentNotice,
    NoticeWording,
)
from apps.incidents.notices import CODE_MARK
from apps.incidents.services import affected_select, notices_queue
from tests.customers.factories import make_customer
from tests.incidents.factories import make_incident, voucher_incident
from tests.schema import migrate_to_latest

pytestmark = pytest.mark.django_db


def codes_of(incident) -> dict:
    return dict(
        AffectedCustomer.objects.filter(incident=incident).values_list(
            "customer_id", "remedy_code"
        )
    )


def test_everyone_told_alike_shares_one_stored_wording_with_their_own_code(
    privacy_admin,
):
    jakarta = [make_customer(country="ID", region="ID-JK") for _ in range(4)]
    california = make_customer(country="US", region="US-CA")
    incident = voucher_incident(privacy_admin, [*jakarta, california])

    assert notices_queue(actor=privacy_admin, incident=incident) == 10

    # Two renderings (California's notice has its own headings), stored once each.
    wordings = NoticeWording.objects.filter(incident=incident)
    assert wordings.count() == 2
    assert {w.notices.count() for w in wordings} == {8, 2}
    codes = codes_of(incident)
    assert len(set(codes.values())) == 5
    for notice in IncidentNotice.objects.filter(incident=incident):
        code = codes[notice.customer_id]
        # The stored words hold the mark once; the notice its own code there.
        assert notice.wording.body.count(CODE_MARK) == 1
        assert code not in notice.wording.body
        assert f"Your code: {code}" in notice.body
        assert code in notice.sections[-1]["text"]
        assert CODE_MARK not in notice.body + str(notice.sections)
        assert code in str(notice.body_html)
        others = set(codes.values()) - {code}
        assert not any(other in notice.body for other in others)


def test_a_mark_typed_into_a_text_staff_write_is_dropped(privacy_admin):
    """Only Amanah's own sentence may hold the mark: typed (or pasted) into a text
    staff write, it would put the customer's code in the wrong place."""
    customer = make_customer(country="ID", region="ID-JK")
    incident = voucher_incident(
        privacy_admin,
        [customer],
        what_you_can_do=f"Change your pass{CODE_MARK}word.",
    )
    Incident.objects.filter(pk=incident.pk).update(
        remedy_description=f"A{CODE_MARK} voucher"
    )
    incident.refresh_from_db()

    notices_queue(actor=privacy_admin, incident=incident)

    code = codes_of(incident)[customer.pk]
    notice = IncidentNotice.objects.get(customer_id=customer.pk, channel="email")
    assert "Change your password." in notice.body
    assert "A voucher" in notice.body
    assert notice.body.count(code) == 1
    assert notice.wording.body.count(CODE_MARK) == 1


def test_notices_without_a_remedy_keep_no_code(privacy_admin):
    customer = make_customer(country="ID", region="ID-JK")
    incident = make_incident(privacy_admin)
    affected_select(
        actor=privacy_admin,
        incident=incident,
        scope="list",
        customer_ids=str(customer.pk),
    )
    notices_queue(actor=privacy_admin, incident=incident)
    notices = IncidentNotice.objects.filter(incident=incident)
    assert set(notices.values_list("remedy_code", flat=True)) == {""}
    assert CODE_MARK not in notices.first().wording.body


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_every_notice_s_words_both_ways(privacy_admin):
    people = [make_customer(country="ID", region="ID-JK") for _ in range(3)]
    incident = voucher_incident(privacy_admin, people)
    notices_queue(actor=privacy_admin, incident=incident)
    before = {
        (n.customer_id, n.channel): (n.subject, n.body, n.sections)
        for n in IncidentNotice.objects.filter(incident=incident)
    }
    table = IncidentNotice._meta.db_table
    try:
        MigrationExecutor(connection).migrate(
            [("incidents", "0007_component_names_per_language")]
        )
        # Backward: each notice its own copy of its words, its code in them.
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT customer_id, channel, subject, body, sections FROM {table}"  # noqa: S608
            )
            copied = {
                (c, ch): (s, b, json.loads(x) if isinstance(x, str) else x)
                for c, ch, s, b, x in cursor
            }
        assert copied == before
    finally:
        migrate_to_latest("incidents")
    # Forward again: the notices of old rows share a wording only where their words
    # are the same (their codes are in them): one each here, same words as before.
    after = {
        (n.customer_id, n.channel): (n.subject, n.body, n.sections)
        for n in IncidentNotice.objects.filter(incident=incident)
    }
    assert after == before
    assert NoticeWording.objects.filter(incident=incident).count() == 3
    assert set(
        IncidentNotice.objects.filter(incident=incident).values_list(
            "remedy_code", flat=True
        )
    ) == {""}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_reversed_each_notice_gets_its_wording_s_language_back(privacy_admin):
    people = [make_customer(country="ID", region="ID-JK") for _ in range(2)]
    incident = voucher_incident(privacy_admin, people)
    notices_queue(actor=privacy_admin, incident=incident)
    queued = IncidentNotice.objects.filter(incident=incident).count()
    try:
        MigrationExecutor(connection).migrate([("incidents", "0008_notice_wordings")])
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT n.language, w.language FROM incidents_incidentnotice n "
                "JOIN incidents_noticewording w ON w.id = n.wording_id"
            )
            pairs = cursor.fetchall()
    finally:
        migrate_to_latest("incidents")
    assert len(pairs) == queued > 0
    assert all(copied == own and own for copied, own in pairs)
