import importlib

import pytest
from django.apps import apps
from django.db import connection, migrations
from django.db.migrations.loader import MigrationLoader

from apps.crypto.services import data_key_destroy
from apps.requests.models import DataRequest
from apps.requests.services import request_open
from tests.portal.factories import make_account

pytestmark = pytest.mark.django_db

fix = importlib.import_module(
    "apps.requests.migrations.0002_honest_held_erasure_outcome"
)

OLD = (
    "We cannot erase your data yet: we are legally required to keep it (Chargeback "
    "dispute pending). We have restricted its use to that purpose only."
)
NEW = (
    "We cannot erase your data yet: the law requires us to keep it (Chargeback "
    "dispute pending). Please ask again once that obligation has ended."
)


def test_a_held_erasure_stops_promising_a_restriction_and_back():
    me = make_account(email="held@example.com")
    held = request_open(actor=me.user, customer=me, kind="erasure")
    other = request_open(actor=me.user, customer=me, kind="objection")
    DataRequest.objects.update(outcome=OLD)
    fix.correct(apps, None)
    held.refresh_from_db()
    other.refresh_from_db()
    assert (held.outcome, other.outcome) == (NEW, OLD)
    fix.restore(apps, None)
    held.refresh_from_db()
    assert held.outcome == OLD


seal = importlib.import_module("apps.requests.migrations.0003_seal_request_details")

WORDS = "Please call me after six; my old address was 12 Jalan Mawar."


@pytest.fixture
def before_sealing():
    """The app registry and the table as migration 0003 has them when its RunPython
    runs: the old plain `details_plain` beside the new sealed `details`. The column is
    added in the test's transaction and goes with its rollback."""
    loader = MigrationLoader(connection)
    node = ("dsr", "0003_seal_request_details")
    state = loader.project_state(node, at_end=False)
    for operation in loader.get_migration(*node).operations:
        if isinstance(operation, migrations.RunPython):
            break
        operation.state_forwards("dsr", state)
    model = state.apps.get_model("dsr", "DataRequest")
    with connection.schema_editor() as editor:
        editor.add_field(model, model._meta.get_field("details_plain"))
        # The services below insert through today's model, which knows no such column.
        editor.execute(
            f"ALTER TABLE {model._meta.db_table} "
            "ALTER COLUMN details_plain SET DEFAULT ''"
        )
    return state.apps


def _written_before(old_apps, request: DataRequest, text: str) -> None:
    old_apps.get_model("dsr", "DataRequest").objects.filter(pk=request.pk).update(
        details_plain=text, details=None
    )


def _columns(old_apps, request: DataRequest) -> tuple[str, bytes | None]:
    plain, sealed = (
        old_apps.get_model("dsr", "DataRequest")
        .objects.filter(pk=request.pk)
        .values_list("details_plain", "details")
        .get()
    )
    return plain, None if sealed is None else bytes(sealed)


def _backward_starts_empty(old_apps) -> None:
    # Unapplied, the RemoveField adds `details_plain` back empty; open_details follows.
    old_apps.get_model("dsr", "DataRequest").objects.update(details_plain="")


@pytest.mark.postgres
def test_details_are_sealed_under_the_requests_key_and_opened_back(before_sealing):
    me = make_account(email="words@example.com")
    request = request_open(actor=me.user, customer=me, kind="objection")
    blank = request_open(actor=me.user, customer=me, kind="restriction")
    _written_before(before_sealing, request, WORDS)
    _written_before(before_sealing, blank, "   ")

    seal.seal_details(before_sealing, None)
    _, sealed = _columns(before_sealing, request)
    assert sealed is not None
    assert b"Jalan Mawar" not in sealed
    assert DataRequest.objects.get(pk=request.pk).details == WORDS
    assert _columns(before_sealing, blank)[1] is None

    _backward_starts_empty(before_sealing)
    seal.open_details(before_sealing, None)
    assert _columns(before_sealing, request)[0] == WORDS
    assert _columns(before_sealing, blank)[0] == ""


@pytest.mark.postgres
def test_details_whose_key_is_gone_are_dropped_and_come_back_empty(before_sealing):
    erased = make_account(email="erased@example.com")
    before = request_open(actor=erased.user, customer=erased, kind="objection")
    keyless = request_open(actor=erased.user, customer=erased, kind="restriction")
    later = make_account(email="later@example.com")
    after = request_open(actor=later.user, customer=later, kind="objection")
    for request in (before, keyless, after):
        _written_before(before_sealing, request, WORDS)
    data_key_destroy(data_key=erased.data_key)
    # A customer deleted outright takes their key row: the request keeps no key.
    DataRequest.objects.filter(pk=keyless.pk).update(data_key=None)

    seal.seal_details(before_sealing, None)
    assert _columns(before_sealing, before)[1] is None
    assert _columns(before_sealing, keyless)[1] is None
    assert _columns(before_sealing, after)[1] is not None

    data_key_destroy(data_key=later.data_key)
    _backward_starts_empty(before_sealing)
    seal.open_details(before_sealing, None)
    assert [
        _columns(before_sealing, request)[0] for request in (before, keyless, after)
    ] == ["", "", ""]
