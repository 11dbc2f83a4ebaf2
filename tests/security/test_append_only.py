"""No side door into the append-only tables: the audit trail and the consent ledger
refuse TRUNCATE as they refuse UPDATE and DELETE, also when a `TRUNCATE ... CASCADE` of
a table they refer to reaches them. Retention's disposal of ledger rows (a DELETE in a
transaction that declared itself a disposal) still goes through.

No setting opens them to TRUNCATE: an ordinary role (no superuser, owner of none of
the tables) that may TRUNCATE them is refused whatever it sets, and cannot switch the
triggers off. A database superuser or the tables' owner still can
(`session_replication_role`, `ALTER TABLE ... DISABLE TRIGGER`); what
`verify_audit_chain` then reports is tested in tests/audit/test_chain.py.
"""

import os

import pytest
from django.db import DatabaseError, connection, transaction
from psycopg import sql

from apps.accounts.models import User
from apps.audit import services as audit
from apps.audit.models import AuditChainHead, AuditEvent
from apps.consent.models import ConsentEvent
from apps.consent.services import consent_events_delete_bulk, consent_record
from apps.core.db import declare_disposal
from apps.customers.models import Customer
from tests.customers.factories import make_customer

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def filled(privacy_admin) -> dict[type, int]:
    """Rows in each append-only table; returns how many each holds."""
    customer = make_customer()
    consent_record(
        actor=privacy_admin,
        customer=customer,
        purpose_code="analytics",
        granted=True,
        source="staff",
    )
    audit.record(actor=privacy_admin, action="test.happened")
    counts = {model: model.objects.count() for model in _APPEND_ONLY}
    assert all(counts.values())
    # Check the deferred foreign keys now: TRUNCATE refuses a table with pending checks,
    # which would hide whether the append-only trigger refuses it.
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    return counts


_APPEND_ONLY = (AuditEvent, ConsentEvent, AuditChainHead)


def _truncate(model: type, options: str = "") -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("TRUNCATE {} " + options).format(
                sql.Identifier(model._meta.db_table)
            )
        )


@pytest.mark.parametrize(
    ("model", "options"),
    [
        (AuditEvent, ""),
        (AuditEvent, "RESTART IDENTITY CASCADE"),
        (AuditChainHead, ""),
        (ConsentEvent, ""),
        (ConsentEvent, "RESTART IDENTITY CASCADE"),
    ],
)
def test_truncate_of_an_append_only_table_is_refused(filled, model, options):
    with pytest.raises(DatabaseError, match="TRUNCATE refused"):
        _truncate(model, options)
    assert {m: m.objects.count() for m in _APPEND_ONLY} == filled


@pytest.mark.parametrize("parent", [Customer, User])
def test_truncate_cascade_of_a_parent_table_is_refused(filled, parent):
    before = parent.objects.count()
    with pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"):
        _truncate(parent, "CASCADE")
    assert parent.objects.count() == before
    assert {m: m.objects.count() for m in _APPEND_ONLY} == filled


def test_a_disposal_may_delete_ledger_rows_but_not_truncate_the_ledger(filled):
    event_ids = list(ConsentEvent.objects.values_list("pk", flat=True))
    with transaction.atomic():
        declare_disposal()
        with pytest.raises(DatabaseError, match="append-only: TRUNCATE refused"):
            _truncate(ConsentEvent)
        assert consent_events_delete_bulk(event_ids=event_ids) == len(event_ids)
    assert not ConsentEvent.objects.exists()
    assert AuditEvent.objects.count() == filled[AuditEvent]


@pytest.fixture
def ordinary_role(filled) -> sql.Identifier:
    """A role that may TRUNCATE the append-only tables but is no superuser and owns
    none of them. Created in the test's transaction, so it goes with its rollback."""
    role = sql.Identifier(f"amanah_ordinary_{os.getpid()}")
    tables = sql.SQL(", ").join(
        sql.Identifier(model._meta.db_table) for model in _APPEND_ONLY
    )
    with connection.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE ROLE {} NOSUPERUSER NOLOGIN").format(role))
        cursor.execute(
            sql.SQL("GRANT SELECT, TRUNCATE ON {} TO {}").format(tables, role)
        )
    return role


def _as(role: sql.Identifier, *statements: sql.Composable) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(role))
        for statement in statements:
            cursor.execute(statement)


@pytest.mark.parametrize(
    "models",
    [(AuditEvent,), (AuditChainHead,), (ConsentEvent,), (AuditEvent, AuditChainHead)],
    ids=["trail", "chain_head", "ledger", "trail_and_chain_head"],
)
def test_an_ordinary_role_cannot_open_truncate_with_the_old_switch(
    filled, ordinary_role, models
):
    tables = sql.SQL(", ").join(sql.Identifier(m._meta.db_table) for m in models)
    with pytest.raises(DatabaseError, match="TRUNCATE refused"):
        _as(
            ordinary_role,
            sql.SQL("SET LOCAL amanah.truncate_ok = 'on'"),
            sql.SQL("TRUNCATE {}").format(tables),
        )
    assert {m: m.objects.count() for m in _APPEND_ONLY} == filled


def test_an_ordinary_role_cannot_switch_the_triggers_off(filled, ordinary_role):
    with pytest.raises(DatabaseError, match="permission denied"):
        _as(ordinary_role, sql.SQL("SET LOCAL session_replication_role = replica"))
    with pytest.raises(DatabaseError, match="must be owner"):
        _as(
            ordinary_role,
            sql.SQL("ALTER TABLE {} DISABLE TRIGGER USER").format(
                sql.Identifier(AuditEvent._meta.db_table)
            ),
        )
    assert {m: m.objects.count() for m in _APPEND_ONLY} == filled
