"""What an erasure certificate says about the copies in backups: the day the master
key the customer's data key was last wrapped under is retired (from its epoch and the
backup retention), in the key ring's terms (destroyed in an HSM, removed by an operator
with `env`), and what a restore does."""

import base64
import io
import os
from datetime import UTC, datetime

import pytest
from django.core.management import call_command
from django.utils import dateformat, timezone

from apps.crypto.masterkeys import master_key_activate
from apps.crypto.models import DataKey, MasterKey
from apps.crypto.services import data_keys_rotate, master_key_create
from apps.requests.selectors import RESTORE_PROMISE, erasure_backups_statement
from apps.requests.services import request_open
from tests.portal.factories import make_account

pytestmark = pytest.mark.django_db

# v1 put in use on 10 January: its epoch (30 days) ends on 9 February, and the last
# backup that may hold a key under it expires 35 days later, on 16 March.
ACTIVATED = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)
# v2 put in use early, on 1 February: v1's keys' copies end 35 days later, on 8 March.
SUPERSEDED = datetime(2026, 2, 1, 3, 15, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _epochs(settings):
    settings.AMANAH_KEY_EPOCH_DAYS = 30
    settings.AMANAH_BACKUP_RETENTION_DAYS = 35
    settings.TIME_ZONE = "UTC"


def erase(customer, capture) -> dict:
    with capture(execute=True):
        request = request_open(actor=customer.user, customer=customer, kind="erasure")
    request.refresh_from_db()
    assert request.status == "completed"
    return request.certificate


def v1_activated_at(when: datetime) -> None:
    MasterKey.objects.filter(version=1).update(activated_at=when)


def test_the_certificate_names_the_day_the_key_of_the_epoch_is_retired(
    django_capture_on_commit_callbacks,
):
    me = make_account(email="epoch@example.com")
    v1_activated_at(ACTIVATED)
    certificate = erase(me, django_capture_on_commit_callbacks)
    assert certificate["backups_unreadable_on"] == "2026-03-16"
    # `env`: the key is retired, and an operator removes it: said so, not "destroyed".
    assert certificate["backups"] == (
        "Copies of your data in our backups are locked with a key that is due to be "
        "retired on 16 March 2026; our administrators then remove it from our "
        "systems, and from then on those copies can no longer be opened. "
        + RESTORE_PROMISE
    )
    assert RESTORE_PROMISE == (
        "If we ever restore a backup, your erasure is applied again before the "
        "system is used."
    )
    assert "backups_expire_by" not in certificate
    assert "epoch@example.com" not in str(certificate)


def test_a_key_still_under_an_older_version_gets_that_versions_day(
    settings, django_capture_on_commit_callbacks
):
    """v2 is in use but the rotation has not reached this customer's key: the copies
    are under v1, retired 35 days after v1's epoch ended early, not v2's day."""
    me = make_account(email="older@example.com")
    v1_activated_at(ACTIVATED)
    v1 = settings.AMANAH_MASTER_KEYS
    v2 = base64.b64encode(os.urandom(32)).decode()
    settings.AMANAH_MASTER_KEYS = f"2:{v2},{v1}"
    master_key_activate(version=2, now=SUPERSEDED)
    assert DataKey.objects.get(pk=me.data_key_id).kek_version == 1
    certificate = erase(me, django_capture_on_commit_callbacks)
    assert certificate["backups_unreadable_on"] == "2026-03-08"
    assert "due to be retired on 8 March 2026;" in certificate["backups"]


def test_with_an_hsm_the_key_is_destroyed(hsm, django_capture_on_commit_callbacks):
    master_key_create(actor=None)
    me = make_account(email="hsm-cert@example.com")
    v1_activated_at(ACTIVATED)
    certificate = erase(me, django_capture_on_commit_callbacks)
    assert certificate["backups_unreadable_on"] == "2026-03-16"
    assert certificate["backups"] == (
        "Copies of your data in our backups are locked with a key that is due to be "
        "destroyed on 16 March 2026; from then on they can no longer be opened. "
        + RESTORE_PROMISE
    )


def test_a_version_unknown_to_the_database_gives_no_date(
    django_capture_on_commit_callbacks,
):
    """Data keys from before master key versions were recorded: no date is promised."""
    me = make_account(email="legacy@example.com")
    MasterKey.objects.all().delete()
    certificate = erase(me, django_capture_on_commit_callbacks)
    assert certificate["backups_unreadable_on"] is None
    assert certificate["backups"].startswith(
        "Copies of your data in our backups stay readable until the key they are "
        "locked with is retired; no date is set for that yet. "
    )


def test_after_the_retirement_the_customer_is_told_it_happened(
    hsm, settings, django_capture_on_commit_callbacks
):
    """Retired (destroyed in the HSM) since: the past tense, and the day it was."""
    master_key_create(actor=None)
    me = make_account(email="retired@example.com")
    erase(me, django_capture_on_commit_callbacks)
    master_key_create(actor=None)
    assert data_keys_rotate(actor=None).remaining == 0
    settings.AMANAH_BACKUP_RETENTION_DAYS = 0
    call_command("retire_keys", stdout=io.StringIO(), stderr=io.StringIO())
    day = retired_day(1)
    me.refresh_from_db()
    assert erasure_backups_statement(customer=me).text == (
        "Copies of your data in our backups were locked with a key that was "
        f"destroyed on {day}: they can no longer be opened. " + RESTORE_PROMISE
    )


def test_after_an_env_retirement_the_removal_is_left_to_the_operator(
    settings, django_capture_on_commit_callbacks
):
    """With `env` a retired key may still be in AMANAH_MASTER_KEYS: no claim that the
    copies cannot be opened until it is removed."""
    me = make_account(email="env-retired@example.com")
    erase(me, django_capture_on_commit_callbacks)
    v2 = base64.b64encode(os.urandom(32)).decode()
    settings.AMANAH_MASTER_KEYS = f"2:{v2},{settings.AMANAH_MASTER_KEYS}"
    assert data_keys_rotate(actor=None).remaining == 0
    settings.AMANAH_BACKUP_RETENTION_DAYS = 0
    call_command("retire_keys", stdout=io.StringIO(), stderr=io.StringIO())
    day = retired_day(1)
    me.refresh_from_db()
    assert erasure_backups_statement(customer=me).text == (
        "Copies of your data in our backups are locked with a key that was retired "
        f"on {day}; once our administrators have removed it from our systems, they "
        "can no longer be opened. " + RESTORE_PROMISE
    )


def retired_day(version: int) -> str:
    retired = MasterKey.objects.get(version=version).retired_at
    assert retired is not None
    return dateformat.format(timezone.localdate(retired), "j F Y")


def test_the_certificate_is_shown_in_the_reader_s_language(
    django_capture_on_commit_callbacks,
):
    from django.utils import translation

    from apps.requests.selectors import certificate_backups_text

    me = make_account(email="reader@example.com")
    v1_activated_at(ACTIVATED)
    with translation.override("de"):
        certificate = erase(me, django_capture_on_commit_callbacks)
    # The record stays in English, with what it was made from.
    assert "16 March 2026" in certificate["backups"]
    assert certificate["backups_case"] == "to_be_retired"
    assert certificate["method"].startswith("crypto-shredding")
    with translation.override("de"):
        assert "16 März 2026" in certificate_backups_text(certificate)
    assert certificate_backups_text({"backups": "As written."}) == "As written."
