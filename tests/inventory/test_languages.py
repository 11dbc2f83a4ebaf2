"""A change notice is told to each customer in their language, whole: the notice
keeps what changed, not an English sentence."""

import pytest
from django.core import mail
from django.utils import translation

from apps.customers.services import customer_language_set
from apps.inventory.models import ChangeNotice
from apps.inventory.texts import change_notice_summary
from tests.consent.factories import consent_answer
from tests.customers.factories import make_customer
from tests.inventory.factories import partner_save

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _language_restored():
    """A page request leaves its language active: give the next test English."""
    with translation.override("en"):
        yield


def _moved(privacy_admin, capture, *people):
    for person in people:
        consent_answer(person, "partner_sharing")
    with capture(execute=True):
        partner_save(privacy_admin, country="US")
    return ChangeNotice.objects.get()


def test_a_german_customer_gets_the_change_notice_in_german(
    privacy_admin, django_capture_on_commit_callbacks
):
    anna = customer_language_set(
        customer=make_customer(email="anna@example.com"), language="de"
    )
    ben = make_customer(email="ben@example.com", country="US", region="US-NY")
    notice = _moved(privacy_admin, django_capture_on_commit_callbacks, anna, ben)
    sent = {m.to[0]: m for m in mail.outbox}
    with translation.override("de"):
        subject = translation.gettext("A change to where your data goes")
        summary = change_notice_summary(notice.parts)
        reason = translation.gettext("new country")
    assert subject != "A change to where your data goes"
    assert reason != "new country"
    german = sent["anna@example.com"]
    assert german.subject == subject
    assert summary in german.body
    assert reason in german.body
    for english in ("A change to", "Change to", "now handles", "See the details"):
        assert english not in german.body
    # One in the United States without a saved language is told in English, and
    # staff read English.
    english_mail = sent["ben@example.com"]
    assert english_mail.subject == "A change to where your data goes"
    assert notice.summary in english_mail.body
    assert notice.summary.startswith("Change to Marketing partner: new country: ")


def test_a_notice_kept_without_its_parts_is_told_in_english_whole(
    privacy_admin, django_capture_on_commit_callbacks
):
    from apps.inventory.tasks import change_notice_send_task

    anna = customer_language_set(
        customer=make_customer(email="anna@example.com"), language="de"
    )
    consent_answer(anna, "partner_sharing")
    notice = ChangeNotice.objects.create(
        summary="Change to Marketing partner: new country.",
        created_at=anna.created_at,
    )
    change_notice_send_task.delay(notice.pk)
    [message] = mail.outbox
    assert message.subject == "A change to where your data goes"
    assert message.body.startswith("Change to Marketing partner: new country.")
    assert "See the details on your My data page" in message.body
