"""A request's "Anything we should know" text is the customer's own data: sealed under
their data key, gone with an erasure, shown to the staff who handle the request (and
the read is in the access log), converted by a reversible migration."""

import pytest
from django.db import connection
from django.urls import reverse

from apps.access.models import AccessLogEntry, AccessPurpose
from apps.core.errors import DomainError
from apps.crypto.fields import ERASED
from apps.requests.models import DataRequest
from apps.requests.services import request_open
from apps.retention.services import customer_erase
from tests.accounts.helpers import sign_in
from tests.consent.factories import reseed_purposes
from tests.portal.factories import make_account
from tests.schema import migrate_to_latest

DETAILS = "My new address is Jl. Merdeka 5, Bandung, since last month"


def _stored(request_id) -> bytes | None:
    """The `details` column as the database holds it."""
    table = DataRequest._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT details FROM {table} WHERE id = %s",  # noqa: S608 - model metadata
            [request_id if connection.vendor == "postgresql" else request_id.hex],
        )
        value = cursor.fetchone()[0]
    if isinstance(value, str):  # a text column: plain text
        return value.encode() or None
    return None if value is None else bytes(value)


@pytest.mark.django_db
def test_details_are_sealed_under_the_customers_key_and_go_with_erasure(
    privacy_admin,
):
    me = make_account(email="details@example.com")
    request = request_open(
        actor=me.user, customer=me, kind="objection", details=DETAILS
    )
    stored = _stored(request.pk)
    assert b"Merdeka" not in stored
    assert DataRequest.objects.get(pk=request.pk).details == DETAILS
    customer_erase(actor=privacy_admin, customer=me)
    assert DataRequest.objects.get(pk=request.pk).details is ERASED


@pytest.mark.django_db
def test_a_customer_may_write_their_own_details_but_no_card_number():
    me = make_account(email="mine@example.com", full_name="Siti Rahma")
    own = "I am Siti Rahma; write to mine@example.com, not my old address."
    request = request_open(actor=me.user, customer=me, kind="objection", details=own)
    assert DataRequest.objects.get(pk=request.pk).details == own
    with pytest.raises(DomainError, match="Card numbers must not be stored") as refused:
        request_open(
            actor=me.user,
            customer=me,
            kind="restriction",
            details="Charge 4111 1111 1111 1111 instead",
        )
    assert refused.value.field == "details"
    assert not DataRequest.objects.filter(kind="restriction").exists()


@pytest.mark.django_db
def test_empty_details_store_nothing():
    me = make_account(email="empty@example.com")
    request = request_open(actor=me.user, customer=me, kind="objection", details="  ")
    assert _stored(request.pk) is None
    assert DataRequest.objects.get(pk=request.pk).details is None


@pytest.mark.django_db
def test_staff_see_the_details_on_the_request_page_and_the_read_is_logged(
    client, privacy_admin
):
    me = make_account(email="shown@example.com")
    request = request_open(
        actor=me.user, customer=me, kind="objection", details=DETAILS
    )
    sign_in(client, privacy_admin)
    html = client.get(reverse("requests:detail", args=[request.pk])).content.decode()
    assert "Jl. Merdeka 5, Bandung" in html
    [entry] = AccessLogEntry.objects.filter(customer=me)
    assert entry.staff == privacy_admin
    assert entry.fields == {"request_details": "full"}
    assert entry.purpose == AccessPurpose.GOVERNANCE


@pytest.mark.django_db
def test_a_request_page_without_details_or_after_erasure_logs_no_read(
    client, privacy_admin
):
    me = make_account(email="none@example.com")
    plain = request_open(actor=me.user, customer=me, kind="objection")
    told = request_open(actor=me.user, customer=me, kind="restriction", details=DETAILS)
    customer_erase(actor=privacy_admin, customer=me)
    sign_in(client, privacy_admin)
    for item in (plain, told):
        response = client.get(reverse("requests:detail", args=[item.pk]))
        assert response.status_code == 200
        assert "Merdeka" not in response.content.decode()
    assert not AccessLogEntry.objects.filter(customer=me).exists()


@pytest.mark.django_db
def test_a_correction_still_applies_beside_sealed_details(privacy_admin):
    from apps.requests.services import request_transition

    me = make_account(email="fix@example.com")
    request = request_open(
        actor=me.user,
        customer=me,
        kind="rectification",
        field="city",
        new_value="Bandung",
        details="I moved last month.",
    )
    request_transition(actor=privacy_admin, request=request, status="completed")
    me.refresh_from_db()
    assert me.city == "Bandung"
    assert DataRequest.objects.get(pk=request.pk).details == "I moved last month."


# The migration, both ways, on the real schema.


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_migration_seals_existing_details_and_backward_opens_them(privacy_admin):
    from django.db.migrations.executor import MigrationExecutor

    reseed_purposes()
    me = make_account(email="migrate@example.com")
    gone = make_account(email="gone@example.com")
    told = request_open(actor=me.user, customer=me, kind="objection", details=DETAILS)
    silent = request_open(actor=me.user, customer=me, kind="restriction")
    erased = request_open(
        actor=gone.user, customer=gone, kind="objection", details="Erase me please"
    )
    customer_erase(actor=privacy_admin, customer=gone)
    table = DataRequest._meta.db_table
    label = DataRequest._meta.app_label
    before = _before_sealing(label)

    try:
        MigrationExecutor(connection).migrate([(label, before)])
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, details FROM {table}")  # noqa: S608
            plain = dict(cursor.fetchall())
        # Backward: the text again, as it was typed; an erased customer's cannot be
        # opened and stays empty.
        assert plain == {told.pk: DETAILS, silent.pk: "", erased.pk: ""}
        # A row as it was written before: plain text, here an erased customer's,
        # which the forward migration drops.
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET details = %s WHERE id = %s",  # noqa: S608
                ["Erase me please", erased.pk],
            )
    finally:
        migrate_to_latest(label)
    assert b"Merdeka" not in _stored(told.pk)
    assert _stored(silent.pk) is None
    assert _stored(erased.pk) is None
    assert DataRequest.objects.get(pk=told.pk).details == DETAILS
    assert DataRequest.objects.get(pk=silent.pk).details is None


def _before_sealing(label: str) -> str:
    """The migration before the one that seals `details`."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connection)
    sealing = next(
        key
        for key in loader.graph.nodes
        if key[0] == label and key[1].endswith("_seal_request_details")
    )
    [parent] = [p for p in loader.graph.node_map[sealing].parents if p.key[0] == label]
    return parent.key[1]
