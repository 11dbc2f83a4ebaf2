"""The consent states' `updated_at`, the consent sync clock: every change of an answer
moves it (grant, withdrawal, unsubscribe link, GPC, a confirmed double opt-in); an
erasure leaves the answers as they were and a deletion takes them.
`consent_states_changed_since` reads by it."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import signing
from django.db import transaction
from django.utils import timezone

from apps.consent.models import ConsentSource, ConsentState
from apps.consent.selectors import consent_states_changed_since
from apps.consent.services import (
    OPT_IN_SALT,
    consent_apply_gpc,
    consent_grant,
    consent_withdraw,
    notice_publish,
    opt_in_confirm,
    unsubscribe,
    unsubscribe_token,
)
from apps.core.db import declare_disposal
from apps.customers.selectors import customers_changed_since
from apps.customers.services import customers_delete_bulk
from apps.retention.services import customer_erase
from tests.consent.factories import consent_answer, notice_changing
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db

LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


@pytest.fixture
def customer():
    return make_customer()


def _state(customer, code: str) -> ConsentState:
    return ConsentState.objects.get(customer=customer, purpose__code=code)


def _aged(customer, code: str) -> None:
    """The answer last changed long ago, so that a change shows."""
    ConsentState.objects.filter(customer=customer, purpose__code=code).update(
        updated_at=LONG_AGO
    )


def _moved(customer, code: str, since: datetime) -> bool:
    return since <= _state(customer, code).updated_at <= timezone.now()


def test_a_grant_stamps_it_with_its_event(customer):
    before = timezone.now()
    event = consent_answer(customer, "analytics")
    state = _state(customer, "analytics")
    assert before <= state.updated_at == event.created_at


@pytest.mark.parametrize(
    "source", [ConsentSource.SELF_SERVICE, ConsentSource.STAFF, ConsentSource.API]
)
def test_a_withdrawal_and_a_grant_again_move_it(customer, source):
    consent_answer(customer, "analytics")
    _aged(customer, "analytics")
    before = timezone.now()
    consent_withdraw(
        actor=None, customer=customer, purpose_code="analytics", source=source
    )
    assert _moved(customer, "analytics", before)
    _aged(customer, "analytics")
    before = timezone.now()
    consent_grant(
        actor=None, customer=customer, purpose_code="analytics", source=source
    )
    assert _moved(customer, "analytics", before)


def test_the_unsubscribe_link_moves_it(customer):
    consent_answer(customer, "marketing_sms")
    _aged(customer, "marketing_sms")
    before = timezone.now()
    token = unsubscribe_token(customer_id=customer.pk, purpose_code="marketing_sms")
    assert unsubscribe(token=token) == (_state(customer, "marketing_sms").purpose, True)
    assert _moved(customer, "marketing_sms", before)
    assert not _state(customer, "marketing_sms").granted


def test_the_gpc_signal_moves_it(customer):
    consent_answer(customer, "partner_sharing")
    _aged(customer, "partner_sharing")
    before = timezone.now()
    assert consent_apply_gpc(customer=customer) is True
    assert _moved(customer, "partner_sharing", before)
    assert _state(customer, "partner_sharing").source == ConsentSource.GPC


def test_a_confirmed_double_opt_in_moves_it(customer):
    consent_answer(customer, "marketing_email", granted=False)
    _aged(customer, "marketing_email")
    pending = consent_grant(
        actor=None,
        customer=customer,
        purpose_code="marketing_email",
        source=ConsentSource.SELF_SERVICE,
    )
    assert _state(customer, "marketing_email").updated_at == LONG_AGO  # pending
    before = timezone.now()
    opt_in_confirm(token=signing.dumps(pending.pk, salt=OPT_IN_SALT))
    assert _moved(customer, "marketing_email", before)
    assert _state(customer, "marketing_email").granted


def test_an_erasure_leaves_the_answers_and_shows_in_the_customers_feed(
    customer, privacy_admin
):
    """The withdrawal time is retention's clock too: an erasure must not restart it.
    The feed says the customer is erased; the customers' feed has the erasure."""
    consent_answer(customer, "analytics")
    _aged(customer, "analytics")
    at = timezone.now()
    customer_erase(actor=privacy_admin, customer=customer)
    state = _state(customer, "analytics")
    assert (state.granted, state.updated_at) == (True, LONG_AGO)
    assert not consent_states_changed_since(since=at)
    [row] = consent_states_changed_since(since=None)
    assert row.customer_erased is True
    assert list(customers_changed_since(since=at)) == [customer]


def test_a_customer_deleted_by_disposal_takes_their_answers(customer):
    consent_answer(customer, "analytics")
    with transaction.atomic():
        declare_disposal()  # the ledger's rows go too
        customers_delete_bulk(customer_ids=[customer.pk])
    assert not ConsentState.objects.exists()


def test_a_material_notice_lapses_old_grants_without_moving_it(customer, privacy_admin):
    """The answers stay as given; the feed says the grant no longer counts when it is
    read, but a reader polling `updated_since` is not told (see the selector)."""
    consent_answer(customer, "partner_sharing")
    consent_answer(customer, "analytics")
    _aged(customer, "partner_sharing")
    notice = notice_changing("partner_sharing", "A new partner.", material=True)
    notice_publish(actor=privacy_admin, notice=notice)
    rows = {
        r.purpose.code: (r.granted, r.grant_counts, r.updated_at)
        for r in consent_states_changed_since(since=None)
    }
    assert rows["partner_sharing"] == (True, False, LONG_AGO)
    assert rows["analytics"][:2] == (True, True)


# The feed's selector ----------------------------------------------------------------


def test_changed_since_is_at_or_after_the_time_with_the_purpose(
    customer, django_assert_num_queries
):
    other = make_customer()
    consent_answer(customer, "analytics")
    consent_answer(other, "analytics")
    _aged(customer, "analytics")
    at = timezone.now()
    consent_answer(other, "marketing_sms", granted=False)
    with django_assert_num_queries(1):  # the purpose is joined
        rows = [
            (r.customer_id, r.purpose.code, r.granted, r.grant_counts)
            for r in consent_states_changed_since(since=at)
        ]
    assert rows == [(other.pk, "marketing_sms", False, False)]
    assert len(consent_states_changed_since(since=None)) == 3
    # The bound is included: a client asking again from the last row it read sees it.
    assert len(consent_states_changed_since(since=LONG_AGO)) == 3
    future = timezone.now() + timedelta(seconds=1)
    assert not consent_states_changed_since(since=future)
