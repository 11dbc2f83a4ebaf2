import io
import json
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from django.core import mail, signing
from django.utils import timezone

from apps.access.services import customers_read
from apps.consent.services import consent_record
from apps.core.errors import Conflict
from apps.crypto.fields import ERASED
from apps.customers.selectors import (
    customer_get,
    customer_list,
    customer_restriction_active,
)
from apps.requests.models import DataRequest, RequestStatus
from apps.requests.services import (
    EXPORT_SALT,
    RequestError,
    export_download,
    regime_and_due,
    request_extend,
    request_open,
    request_transition,
)
from apps.retention.services import hold_place
from tests.access.factories import assign
from tests.portal.factories import make_account

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 31, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("country", "region", "regime", "due"),
    [
        ("DE", "", "GDPR", datetime(2026, 2, 28, 10, 0, tzinfo=UTC)),  # one month
        ("GB", "", "UK GDPR", datetime(2026, 2, 28, 10, 0, tzinfo=UTC)),
        ("US", "US-CA", "CCPA", NOW + timedelta(days=45)),
        ("ID", "ID-JK", "UU PDP", NOW + timedelta(hours=72)),
        ("BR", "", "LGPD", NOW + timedelta(days=15)),
        ("SG", "", "default", NOW + timedelta(days=30)),
    ],
)
def test_due_dates_per_jurisdiction(country, region, regime, due):
    assert regime_and_due(country=country, region=region, received=NOW) == (regime, due)


def test_gdpr_requests_can_be_extended_once_by_two_months(privacy_admin):
    customer = make_account(email="de@example.com", country="DE", region="DE-BE")
    request = request_open(actor=customer.user, customer=customer, kind="objection")
    due = request.due_at
    request = request_extend(
        actor=privacy_admin, request=request, reason="Many linked requests"
    )
    assert request.due_at == due + relativedelta(months=2)
    with pytest.raises(RequestError, match="already used"):
        request_extend(
            actor=privacy_admin, request=request, reason="Many linked requests"
        )


def _open_export(customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        request = request_open(actor=customer.user, customer=customer, kind="access")
    request.refresh_from_db()
    return request


def _token(request) -> str:
    return signing.TimestampSigner(salt=EXPORT_SALT).sign(str(request.pk))


def test_an_export_holds_exactly_the_customers_own_data(
    django_capture_on_commit_callbacks,
):
    from apps.accounts.models import Role
    from tests.accounts.factories import UserFactory

    support_agent = UserFactory(username="agent-k7q", role=Role.SUPPORT_AGENT)
    me = make_account(email="me@example.com", full_name="Me Myself")
    other = make_account(email="other@example.com", full_name="Someone Else")
    for who in (me, other):
        assign(support_agent, who)
        customers_read(actor=support_agent, customers=[who])
        consent_record(
            actor=None,
            customer=who,
            purpose_code="analytics",
            granted=True,
            source="api",
        )
    request = _open_export(me, django_capture_on_commit_callbacks)
    assert request.status == RequestStatus.COMPLETED
    assert b"me@example.com" not in bytes(request.export_blob)  # sealed, not plaintext
    assert [m.to for m in mail.outbox] == [["me@example.com"]]

    _, data = export_download(token=_token(request), customer=me)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert sorted(archive.namelist()) == ["my-data.html", "my-data.json"]
    contents = json.loads(archive.read("my-data.json"))
    text = archive.read("my-data.json").decode() + archive.read("my-data.html").decode()
    assert contents["customer"]["id"] == str(me.pk)
    assert contents["customer"]["fields"]["Email"] == "me@example.com"
    assert "Someone Else" not in text
    assert "other@example.com" not in text
    assert str(other.pk) not in text
    assert len(contents["who_looked_at_my_data"]) == 1
    assert "agent-k7q" not in text  # a role, never the employee's username
    assert contents["who_looked_at_my_data"][0]["who"] == "A support agent"
    assert contents["consent_receipts"][0]["purpose"] == "analytics"


def test_the_download_works_once_and_expires(
    django_capture_on_commit_callbacks, monkeypatch
):
    me = make_account(email="me@example.com")
    request = _open_export(me, django_capture_on_commit_callbacks)
    token = _token(request)
    export_download(token=token, customer=me)
    with pytest.raises(RequestError, match="already downloaded"):
        export_download(token=token, customer=me)
    assert DataRequest.objects.get(pk=request.pk).export_blob is None

    with pytest.raises(RequestError, match="not valid"):
        export_download(token=token[:-2] + "xx", customer=me)
    other = make_account(email="other@example.com")
    with pytest.raises(RequestError, match="not valid"):
        export_download(token=token, customer=other)

    later = timezone.now() + timedelta(hours=25)
    monkeypatch.setattr("time.time", lambda: later.timestamp())
    with pytest.raises(RequestError, match="expired"):
        export_download(token=token, customer=me)


def test_an_expired_export_is_deleted_at_the_first_try(
    django_capture_on_commit_callbacks,
):
    me = make_account(email="me@example.com")
    request = _open_export(me, django_capture_on_commit_callbacks)
    DataRequest.objects.filter(pk=request.pk).update(
        export_ready_at=timezone.now() - timedelta(hours=25)
    )
    token = _token(request)  # My data mints a fresh link on every visit
    with pytest.raises(RequestError, match="expired"):
        export_download(token=token, customer=me)
    assert DataRequest.objects.get(pk=request.pk).export_blob is None


def test_erasure_under_a_legal_hold_is_refused_with_the_reason(
    privacy_admin, django_capture_on_commit_callbacks
):
    me = make_account(email="held@example.com")
    hold_place(actor=privacy_admin, customer=me, reason="Chargeback dispute pending")
    with django_capture_on_commit_callbacks(execute=True):
        request = request_open(actor=me.user, customer=me, kind="erasure")
    request.refresh_from_db()
    assert request.status == RequestStatus.COMPLETED
    # The hold restricts the data for real: a restriction in force, to its purpose.
    assert request.outcome == (
        "We cannot erase your data yet: the law requires us to keep it (Chargeback "
        "dispute pending). Meanwhile its use is restricted to that obligation: we "
        "keep it, and do not use it for marketing or share it, and we will tell you "
        "before the restriction is lifted. Please ask again once that obligation "
        "has ended."
    )
    assert request.certificate["restricted"] is True
    restriction = customer_restriction_active(customer=me)
    assert restriction is not None
    assert restriction.source == "legal_hold"
    assert restriction.purpose == "legal claims: Chargeback dispute pending"
    assert restriction.request_id == request.pk
    assert request.certificate["restriction"] == restriction.pk
    assert customer_get(customer_id=me.pk).email == "held@example.com"


# A hold on a whole kind of record was placed for reasons of its own (an investigation,
# possibly naming someone else), checked for personal data by shape only.
KIND_REASON = "Investigation 2026-04 into Budi Hartono, ordered by the regulator"


@pytest.mark.parametrize("covers", ["customer_pii", "closed_accounts"])
def test_erasure_under_a_hold_on_a_kind_of_record_does_not_show_its_reason(
    client, privacy_admin, django_capture_on_commit_callbacks, covers
):
    from django.urls import reverse

    from apps.customers.services import customer_close
    from tests.portal.factories import PASSWORD

    me = make_account(email="held@example.com")
    if covers == "closed_accounts":
        me = customer_close(actor=privacy_admin, customer=me)
    hold_place(actor=privacy_admin, covers=covers, reason=KIND_REASON)
    with django_capture_on_commit_callbacks(execute=True):
        request = request_open(actor=me.user, customer=me, kind="erasure")
    request.refresh_from_db()
    assert request.status == RequestStatus.COMPLETED
    assert request.certificate["restricted"] is True
    assert request.outcome == (
        "We cannot erase your data yet: a legal obligation requires us to keep it. "
        "Meanwhile its use is restricted to that obligation: we keep it, and do not "
        "use it for marketing or share it, and we will tell you before the "
        "restriction is lifted. Please ask again once that obligation has ended."
    )
    # Restricted too, to the hold by number: its reason may name someone else.
    restriction = customer_restriction_active(customer=me)
    assert restriction is not None
    assert restriction.purpose.startswith("legal claims: legal hold ")
    assert "Hartono" not in restriction.purpose
    assert customer_get(customer_id=me.pk).email == "held@example.com"
    assert not any(KIND_REASON in str(m.body) + m.subject for m in mail.outbox)
    if covers == "customer_pii":  # a closed account cannot sign in to look
        client.post(
            reverse("portal:login"), {"email": "held@example.com", "password": PASSWORD}
        )
        page = client.get(reverse("portal:data")).content.decode()
        assert "a legal obligation requires us to keep it" in page
        assert "Hartono" not in page
        assert "2026-04" not in page


def test_after_erasure_nothing_of_the_customer_reads_anywhere(
    django_capture_on_commit_callbacks,
):
    me = make_account(email="gone@example.com", phone="+62 812-1111-2222")
    export = _open_export(me, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        request = request_open(actor=me.user, customer=me, kind="erasure")
    request.refresh_from_db()
    certificate = request.certificate
    assert "Email" in certificate["fields"]
    assert certificate["backups_unreadable_on"] > timezone.now().date().isoformat()
    fresh = customer_get(customer_id=me.pk)
    assert fresh.email is ERASED
    assert list(customer_list(email="gone@example.com")) == []
    assert list(customer_list(phone="+62 812-1111-2222")) == []
    with pytest.raises(RequestError, match="erased"):
        export_download(token=_token(export), customer=fresh)


def test_an_erasure_request_for_a_customer_already_erased_completes(
    django_capture_on_commit_callbacks,
):
    """After a restore, an erasure request completed after the backup is open again
    while `reapply_erasures` has already erased its customer: the stalled-request job
    completes it with the erasure that happened, instead of failing every run."""
    from apps.requests.services import erasure_execute
    from apps.retention.services import customer_erase

    me = make_account(email="again@example.com")
    request = request_open(actor=me.user, customer=me, kind="erasure")
    erased = customer_erase(actor=None, customer=me)
    request = erasure_execute(request=request)
    assert request.status == RequestStatus.COMPLETED
    assert request.certificate["erased_at"] == erased.erased_at.isoformat()
    assert request.outcome == "Your data was erased."


def test_a_second_open_request_of_a_kind_is_a_conflict():
    me = make_account(email="me@example.com")
    request_open(actor=me.user, customer=me, kind="objection")
    with pytest.raises(Conflict):
        request_open(actor=me.user, customer=me, kind="objection")


def test_staff_must_record_how_they_verified_identity(privacy_admin):
    me = make_account(email="me@example.com")
    with pytest.raises(RequestError, match="verified"):
        request_open(actor=privacy_admin, customer=me, kind="restriction")
    request = request_open(
        actor=privacy_admin,
        customer=me,
        kind="restriction",
        verification="Video call, ID card",
    )
    assert request.verification == "Video call, ID card"


def test_a_correction_is_sealed_and_applied_on_completion(privacy_admin):
    me = make_account(email="me@example.com", city="Jakarta")
    request = request_open(
        actor=me.user,
        customer=me,
        kind="rectification",
        field="city",
        new_value="Bandung",
    )
    raw = (
        DataRequest.objects.filter(pk=request.pk)
        .values_list("new_value", flat=True)
        .get()
    )
    assert b"Bandung" not in bytes(raw)
    request_transition(
        actor=privacy_admin, request=request, status="completed", note="done"
    )
    assert customer_get(customer_id=me.pk).city == "Bandung"


def test_refusing_needs_a_reason(privacy_admin):
    me = make_account(email="me@example.com")
    request = request_open(actor=me.user, customer=me, kind="objection")
    with pytest.raises(RequestError, match="reason"):
        request_transition(actor=privacy_admin, request=request, status="refused")
    request = request_transition(
        actor=privacy_admin,
        request=request,
        status="refused",
        note="No processing on that basis",
    )
    assert request.status == "refused"


def test_a_request_whose_task_was_lost_is_processed_by_the_beat(
    monkeypatch, settings, django_capture_on_commit_callbacks
):
    from kombu.exceptions import OperationalError

    from apps.requests.services import requests_process_stalled
    from apps.requests.tasks import request_process_task

    lost, fresh = (
        make_account(email="lost@example.com"),
        make_account(email="fresh@example.com"),
    )

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to redis")

    with monkeypatch.context() as patched:
        patched.setattr(request_process_task, "delay", broker_down)
        with django_capture_on_commit_callbacks(execute=True):
            old = request_open(actor=lost.user, customer=lost, kind="access")
            new = request_open(actor=fresh.user, customer=fresh, kind="access")
    lost = timedelta(
        seconds=settings.AMANAH_BROKER_VISIBILITY_TIMEOUT
        + settings.CELERY_TASK_TIME_LIMIT
        + 1
    )
    DataRequest.objects.filter(pk=old.pk).update(received_at=timezone.now() - lost)

    assert requests_process_stalled() == 1
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.status == RequestStatus.COMPLETED
    assert old.export_ready_at is not None
    assert new.status == RequestStatus.RECEIVED  # may still be on its way
