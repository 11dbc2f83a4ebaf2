import threading
from datetime import timedelta

import pytest
from django.core import mail
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.consent.errors import ConsentError, TokenExpired, TokenInvalid
from apps.consent.models import (
    ConsentEvent,
    ConsentSource,
    ConsentState,
    OptInRequest,
)
from apps.consent.selectors import (
    consent_overview_for_customer,
    consent_receipts_for_customer,
    consent_state_replay_matches,
    notice_pending_review,
)
from apps.consent.services import (
    OPT_IN_SALT,
    consent_apply_gpc,
    consent_grant,
    consent_record,
    consent_withdraw,
    notice_acknowledge,
    notice_publish,
    opt_in_confirm,
    unsubscribe,
    unsubscribe_headers,
    unsubscribe_token,
)
from apps.consent.tasks import notice_announce_batch_task
from tests.consent.factories import notice_changing, reseed_purposes
from tests.customers.factories import make_customer
from tests.mail import flaky_mail

pytestmark = pytest.mark.django_db


def granted(customer, code: str) -> bool:
    views = {
        v.purpose.code: v for v in consent_overview_for_customer(customer=customer)
    }
    return views[code].granted


def grant(customer, code: str, source=ConsentSource.SELF_SERVICE):
    return consent_record(
        actor=None, customer=customer, purpose_code=code, granted=True, source=source
    )


@pytest.fixture
def customer():
    return make_customer(email="jane@example.com")


def test_no_consent_is_assumed(customer):
    assert not any(v.granted for v in consent_overview_for_customer(customer=customer))


def test_grant_and_withdraw_append_events_and_keep_state_equal_to_the_replay(customer):
    grant(customer, "marketing_sms")
    consent_withdraw(
        actor=None,
        customer=customer,
        purpose_code="marketing_sms",
        source="self_service",
    )
    grant(customer, "analytics")
    assert ConsentEvent.objects.filter(customer=customer).count() == 3
    assert not granted(customer, "marketing_sms")
    assert granted(customer, "analytics")
    assert consent_state_replay_matches(customer=customer)
    state = ConsentState.objects.get(customer=customer, purpose__code="analytics")
    assert state.notice_version == 1
    assert AuditEvent.objects.filter(action="consent.withdrawn").count() == 1


@pytest.mark.parametrize("source", [s for s in ConsentSource if s != "double_opt_in"])
def test_withdrawal_through_each_source(customer, source):
    grant(customer, "marketing_sms")
    event = consent_withdraw(
        actor=None, customer=customer, purpose_code="marketing_sms", source=source
    )
    assert event.source == source
    assert not granted(customer, "marketing_sms")


def test_unknown_purpose_and_erased_customers_are_refused(customer):
    with pytest.raises(ConsentError, match="Unknown purpose"):
        grant(customer, "nope")
    from apps.retention.services import customer_erase

    customer_erase(actor=None, customer=customer)
    with pytest.raises(ConsentError, match="erased"):
        grant(customer, "analytics")
    assert not ConsentEvent.objects.exists()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE consent_consentevent SET granted = NOT granted",
        "DELETE FROM consent_consentevent",
    ],
)
def test_the_ledger_refuses_update_and_delete(customer, statement):
    grant(customer, "analytics")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert ConsentEvent.objects.count() == 1


@pytest.mark.postgres
def test_disposal_may_delete_inside_its_own_transaction(customer):
    grant(customer, "analytics")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL amanah.disposal = 'on'")
        cursor.execute("DELETE FROM consent_consentevent")
    assert not ConsentEvent.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_lose_nothing_and_state_equals_the_replay():
    reseed_purposes()  # a transactional test may start after another one's flush
    customer = make_customer()
    writers, per_writer = 8, 10
    barrier = threading.Barrier(writers)
    errors = []

    def write(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_writer):
                consent_record(
                    actor=None,
                    customer=customer,
                    purpose_code=["marketing_sms", "analytics"][i % 2],
                    granted=(n + i) % 2 == 0,
                    source="api",
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert (
        ConsentEvent.objects.filter(customer=customer).count() == writers * per_writer
    )
    assert consent_state_replay_matches(customer=customer)


def test_double_opt_in_is_pending_until_the_link_is_opened(
    customer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        pending = consent_grant(
            actor=None,
            customer=customer,
            purpose_code="marketing_email",
            source="self_service",
        )
    assert isinstance(pending, OptInRequest)
    assert not granted(customer, "marketing_email")
    [message] = mail.outbox
    assert message.to == ["jane@example.com"]
    assert 'open this link and press "Yes, confirm"' in message.body  # opening is not
    link = next(line for line in message.body.splitlines() if "/me/confirm/" in line)
    token = link.rstrip("/").rsplit("/", 1)[-1]

    event = opt_in_confirm(token=token)
    assert event.source == ConsentSource.DOUBLE_OPT_IN
    assert granted(customer, "marketing_email")
    with pytest.raises(TokenExpired, match="already used"):
        opt_in_confirm(token=token)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_confirmation_link_opened_twice_at_once_is_used_once():
    from django.core import signing

    reseed_purposes()  # a transactional test may start after another one's flush
    customer = make_customer()
    pending = consent_grant(
        actor=None,
        customer=customer,
        purpose_code="marketing_email",
        source="self_service",
    )
    token = signing.dumps(pending.pk, salt=OPT_IN_SALT)
    clicks = 4
    barrier = threading.Barrier(clicks)
    outcomes: list[str] = []

    def click() -> None:
        try:
            barrier.wait()
            opt_in_confirm(token=token)
            outcomes.append("confirmed")
        except TokenExpired:
            outcomes.append("already used")
        finally:
            connection.close()

    threads = [threading.Thread(target=click) for _ in range(clicks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["already used"] * (clicks - 1) + ["confirmed"]
    assert ConsentEvent.objects.filter(customer=customer, granted=True).count() == 1
    assert consent_state_replay_matches(customer=customer)


def test_an_expired_or_tampered_opt_in_link_changes_nothing(customer):
    from django.core import signing

    pending = consent_grant(
        actor=None,
        customer=customer,
        purpose_code="marketing_email",
        source="self_service",
    )
    OptInRequest.objects.filter(pk=pending.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    with pytest.raises(TokenExpired, match="expired"):
        opt_in_confirm(token=signing.dumps(pending.pk, salt=OPT_IN_SALT))
    with pytest.raises(TokenInvalid):
        opt_in_confirm(token=signing.dumps(pending.pk, salt=OPT_IN_SALT) + "x")
    with pytest.raises(TokenInvalid):
        opt_in_confirm(token=signing.dumps(pending.pk, salt="another-salt"))
    assert not granted(customer, "marketing_email")


def test_gpc_withdraws_partner_sharing_once(customer):
    grant(customer, "partner_sharing")
    assert consent_apply_gpc(customer=customer) is True
    assert not granted(customer, "partner_sharing")
    assert ConsentEvent.objects.filter(source="gpc").count() == 1
    # The customer turns it back on deliberately: a later GPC request does not undo it.
    grant(customer, "partner_sharing")
    assert consent_apply_gpc(customer=customer) is False
    assert granted(customer, "partner_sharing")


def test_gpc_withdraws_the_first_grant_it_finds_then_never_again(customer):
    # As the privacy page says: the first time GPC is seen while sharing is on.
    assert consent_apply_gpc(customer=customer) is False  # off: nothing recorded
    grant(customer, "partner_sharing")
    assert consent_apply_gpc(customer=customer) is True
    assert not granted(customer, "partner_sharing")
    grant(customer, "partner_sharing")  # turned on again after that: it stays on
    assert consent_apply_gpc(customer=customer) is False
    assert granted(customer, "partner_sharing")


def test_unsubscribe_withdraws_once_and_a_replay_is_harmless(customer):
    grant(customer, "marketing_sms")
    token = unsubscribe_token(customer_id=customer.pk, purpose_code="marketing_sms")
    assert unsubscribe(token=token)[1] is True
    assert unsubscribe(token=token)[1] is False
    assert not granted(customer, "marketing_sms")
    assert ConsentEvent.objects.filter(source="unsubscribe_link").count() == 1


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t + "x",
        lambda t: t.replace("marketing_sms", "analytics"),
        lambda t: "x",
    ],
)
def test_tampered_unsubscribe_tokens_are_refused(customer, mangle):
    grant(customer, "marketing_sms")
    token = unsubscribe_token(customer_id=customer.pk, purpose_code="marketing_sms")
    with pytest.raises(TokenInvalid):
        unsubscribe(token=mangle(token))
    assert granted(customer, "marketing_sms")


def test_unsubscribe_headers_follow_rfc_8058(customer):
    headers = unsubscribe_headers(
        customer_id=customer.pk, purpose_code="marketing_email"
    )
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<http")
    assert "/u/" in headers["List-Unsubscribe"]
    assert "jane" not in headers["List-Unsubscribe"]


def test_receipts_name_who_what_when_notice_and_source(customer):
    grant(customer, "analytics")
    receipts = consent_receipts_for_customer(customer=customer)["receipts"]
    assert receipts == [
        {
            "type": "amanah.consent_receipt",
            "issuer": "http://127.0.0.1:8000",
            "receipt": receipts[0]["receipt"],
            "customer": str(customer.pk),
            "purpose": "analytics",
            "decision": "granted",
            "at": receipts[0]["at"],
            "notice_version": 1,
            "source": "self_service",
            "by": "you",
            "evidence_hash": "",
            "signature": receipts[0]["signature"],  # tests/consent/test_receipts.py
        }
    ]


def test_a_material_notice_asks_for_review_and_fresh_consent(
    customer, privacy_admin, django_capture_on_commit_callbacks
):
    grant(customer, "partner_sharing")
    notice = notice_changing(
        "partner_sharing",
        "We work with a new partner.",
        material=True,
        description="A new partner receives contact details.",
    )
    with django_capture_on_commit_callbacks(execute=True):
        notice_publish(actor=privacy_admin, notice=notice)
    assert notice_pending_review(customer=customer) == notice
    assert not granted(customer, "partner_sharing")  # the old grant no longer counts
    assert [m.to for m in mail.outbox] == [["jane@example.com"]]
    assert "version 2" in mail.outbox[0].subject

    notice_acknowledge(customer=customer, notice=notice)
    assert notice_pending_review(customer=customer) is None
    grant(customer, "partner_sharing")
    assert granted(customer, "partner_sharing")


@pytest.fixture
def analytics_notice(customer):
    """Four customers who answered for analytics, and a notice that changes it: the
    announcement batch reaches each of them. Returns the notice and the customers."""
    people = [
        customer,
        *(make_customer(email=f"other{n}@example.com") for n in range(3)),
    ]
    for person in people:
        grant(person, "analytics")
    notice = notice_changing(
        "analytics",
        "We measure less.",
        description="Analytics keeps 6 months instead of 12.",
    )
    return notice, people


def _announce(notice, people):
    """The batch task as a worker runs it: Celery retries it after a passing failure."""
    ids = [str(c.pk) for c in people]
    return notice_announce_batch_task.apply(args=(notice.pk, ids), throw=False)


def test_a_mail_server_that_drops_the_connection_loses_no_notice_email(
    analytics_notice, settings
):
    notice, people = analytics_notice
    flaky_mail(settings, 2)  # the second email of the batch fails once
    _announce(notice, people)
    assert sorted(m.to[0] for m in mail.outbox) == sorted(c.email for c in people)


def test_an_address_the_mail_server_refuses_for_good_holds_up_no_other(
    analytics_notice, settings
):
    notice, people = analytics_notice
    flaky_mail(settings, refuse=("other0@example.com",))
    assert _announce(notice, people).successful()
    told = sorted(m.to[0] for m in mail.outbox)
    assert told == sorted(c.email for c in people if c.email != "other0@example.com")
