import importlib

import pytest
from django.apps import apps
from django.core import mail

from apps.consent.models import NoticeChange, PrivacyNotice, Purpose
from apps.consent.selectors import notice_current, notice_pending_review
from tests.consent.factories import consent_answer
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db

fix = importlib.import_module("apps.consent.migrations.0005_honest_texts_and_notice_v2")


def purpose_text(code: str = fix.PURPOSE) -> str:
    return Purpose.objects.get(code=code).description


def as_installed_before():
    """An installation seeded with the old texts (v1 published under them)."""
    Purpose.objects.filter(code=fix.PURPOSE).update(description=fix.OLD_PURPOSE)
    Purpose.objects.filter(code=fix.GPC_PURPOSE).update(description=fix.OLD_GPC_PURPOSE)
    PrivacyNotice.objects.filter(version=1).update(body=fix.OLD_BODY)


def test_a_new_install_is_seeded_with_the_corrected_texts_and_no_v2():
    assert purpose_text() == fix.NEW_PURPOSE
    assert purpose_text(fix.GPC_PURPOSE) == fix.NEW_GPC_PURPOSE
    assert PrivacyNotice.objects.get(version=1).body == fix.NEW_BODY
    fix.correct(apps, None)
    assert not PrivacyNotice.objects.filter(version=2).exists()


def test_an_old_install_gets_v2_which_asks_nothing_of_anyone(
    django_capture_on_commit_callbacks,
):
    customer = make_customer(email="jane@example.com")
    consent_answer(customer, "partner_sharing")
    as_installed_before()
    with django_capture_on_commit_callbacks(execute=True):
        fix.correct(apps, None)
    assert purpose_text() == fix.NEW_PURPOSE
    assert purpose_text(fix.GPC_PURPOSE) == fix.NEW_GPC_PURPOSE
    v2 = notice_current()
    assert (v2.version, v2.body, v2.summary) == (2, fix.NEW_BODY, fix.NEW_SUMMARY)
    assert PrivacyNotice.objects.get(version=1).body == fix.OLD_BODY  # never edited
    # No purpose changed: nobody is emailed and no consent needs renewing.
    assert not NoticeChange.objects.filter(notice=v2).exists()
    assert not mail.outbox
    assert notice_pending_review(customer=customer) is None
    assert set(Purpose.objects.values_list("min_notice_version", flat=True)) == {0}

    fix.restore(apps, None)
    assert purpose_text() == fix.OLD_PURPOSE
    assert purpose_text(fix.GPC_PURPOSE) == fix.OLD_GPC_PURPOSE
    assert not PrivacyNotice.objects.filter(version=2).exists()


def test_v2_stays_once_someone_answered_under_it():
    as_installed_before()
    fix.correct(apps, None)
    consent_answer(make_customer(), "analytics")
    fix.restore(apps, None)
    assert PrivacyNotice.objects.filter(version=2).exists()


def test_an_edited_notice_or_a_later_version_gets_no_v2():
    PrivacyNotice.objects.filter(version=1).update(body="Our own notice.")
    fix.correct(apps, None)
    assert not PrivacyNotice.objects.filter(version=2).exists()
