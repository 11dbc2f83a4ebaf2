import importlib

import pytest
from django.apps import apps

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
