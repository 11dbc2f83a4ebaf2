"""Without a broker (`make run`: tasks run eagerly, in the web request) nothing is sent
inside the request that made the change; `manage.py deliver_webhooks` sends what is
due and prints the counts."""

import io

import pytest
from django.core.management import call_command

from apps.consent.models import ConsentSource
from apps.consent.services import consent_record
from apps.webhooks.models import Delivery, DeliveryStatus
from tests.customers.factories import make_customer
from tests.webhooks.factories import make_endpoint
from tests.webhooks.receiver import Receiver

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def test_without_a_broker_a_change_sends_nothing_in_its_request(
    privacy_admin, settings, django_capture_on_commit_callbacks
):
    """W2: a slow receiver never holds the page of a consent click: the delivery
    waits for the command (or a worker, with a broker)."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    receiver = Receiver().start()
    try:
        make_endpoint(privacy_admin, receiver.url, events=["consent.changed"])
        customer = make_customer()
        with django_capture_on_commit_callbacks(execute=True):
            consent_record(
                actor=None,
                customer=customer,
                purpose_code="marketing_email",
                granted=True,
                source=ConsentSource.API,
            )
        assert receiver.received == []
        assert Delivery.objects.get().status == DeliveryStatus.PENDING
    finally:
        receiver.stop()


def test_deliver_webhooks_sends_what_is_due_and_prints_the_counts(
    privacy_admin, settings
):
    settings.AMANAH_WEBHOOK_MAX_ATTEMPTS = 3
    settings.AMANAH_WEBHOOK_RETRY_SECONDS = 60
    good, bad = Receiver().start(), Receiver(status=500).start()
    try:
        make_endpoint(privacy_admin, good.url, events=["consent.changed"])
        make_endpoint(privacy_admin, bad.url, events=["consent.changed"])
        for _ in range(2):
            consent_record(
                actor=None,
                customer=make_customer(),
                purpose_code="marketing_email",
                granted=True,
                source=ConsentSource.API,
            )
        out = io.StringIO()
        call_command("deliver_webhooks", stdout=out)
    finally:
        good.stop()
        bad.stop()
    assert out.getvalue().strip() == (
        "Sent 4: delivered 2, failed 2, cancelled 0; pending 2."
    )
    assert len(good.received) == 2
    out = io.StringIO()
    call_command("deliver_webhooks", stdout=out)  # the retries are not due yet
    assert out.getvalue().strip() == (
        "Sent 0: delivered 0, failed 0, cancelled 0; pending 2."
    )
