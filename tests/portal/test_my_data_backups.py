"""My data says what an erasure would mean for the copies in backups (the day the key
of the customer's data key's epoch is retired), and an erased customer, signed out on
their next page, is told the same from their own key; certificates render, old and
new."""

import base64
import os
from datetime import UTC, datetime

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from apps.crypto.masterkeys import master_key_activate
from apps.crypto.models import MasterKey
from apps.crypto.services import master_key_create
from apps.requests.models import DataRequest
from apps.requests.selectors import RESTORE_PROMISE
from apps.requests.services import request_open
from tests.accounts.helpers import sign_in
from tests.portal.factories import make_account

pytestmark = pytest.mark.django_db

ACTIVATED = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)  # v1's epoch: to 9 February
SUPERSEDED = datetime(2026, 2, 1, 3, 15, tzinfo=UTC)  # v2 in use early


@pytest.fixture(autouse=True)
def _epochs(settings):
    settings.AMANAH_KEY_EPOCH_DAYS = 30
    settings.AMANAH_BACKUP_RETENTION_DAYS = 35
    settings.TIME_ZONE = "UTC"


def my_data(client) -> str:
    response = client.get(reverse("portal:data"))
    assert response.status_code == 200
    return " ".join(response.content.decode().split())


def test_my_data_says_when_backups_of_an_erasure_now_become_unreadable(client):
    me = make_account(email="page@example.com")
    MasterKey.objects.filter(version=1).update(activated_at=ACTIVATED)
    sign_in(client, me.user)
    assert (
        "If your data is erased now, copies of your data in our backups are locked "
        "with a key that is due to be retired on 16 March 2026; our administrators "
        "then remove it from our systems, and from then on those copies can no "
        "longer be opened. " + RESTORE_PROMISE
    ) in my_data(client)


def test_my_data_gives_the_older_versions_day_while_the_key_is_under_it(
    client, settings
):
    me = make_account(email="page-older@example.com")
    MasterKey.objects.filter(version=1).update(activated_at=ACTIVATED)
    v2 = base64.b64encode(os.urandom(32)).decode()
    settings.AMANAH_MASTER_KEYS = f"2:{v2},{settings.AMANAH_MASTER_KEYS}"
    master_key_activate(version=2, now=SUPERSEDED)
    sign_in(client, me.user)
    assert "a key that is due to be retired on 8 March 2026;" in my_data(client)


def test_with_an_hsm_my_data_says_destroyed(client, hsm):
    master_key_create(actor=None)
    me = make_account(email="page-hsm@example.com")
    MasterKey.objects.filter(version=1).update(activated_at=ACTIVATED)
    sign_in(client, me.user)
    assert (
        "If your data is erased now, copies of your data in our backups are locked "
        "with a key that is due to be destroyed on 16 March 2026; from then on they "
        "can no longer be opened."
    ) in my_data(client)


def test_an_erased_customer_is_told_on_the_way_out(
    client, django_capture_on_commit_callbacks
):
    me = make_account(email="leaving@example.com")
    MasterKey.objects.filter(version=1).update(activated_at=ACTIVATED)
    sign_in(client, me.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("portal:data"), {"kind": "erasure"})
    assert response.status_code == 302
    response = client.get(reverse("portal:data"))
    assert response.status_code == 302
    assert response.url == reverse("portal:login")
    (message,) = [
        str(m) for m in get_messages(response.wsgi_request) if "erased" in str(m)
    ]
    certificate = DataRequest.objects.get(customer=me, kind="erasure").certificate
    assert message == (
        f"Your data was erased and your account is closed. {certificate['backups']}"
    )
    assert "retired on 16 March 2026;" in message
    assert "leaving@example.com" not in message


def test_certificates_old_and_new_render(client):
    """A certificate from before key epochs (`backups_expire_by`) still renders as it
    was issued; a new one shows its words. (Shown to a customer still signed in, as
    after a restore that has not yet been reapplied.)"""
    me = make_account(email="certs@example.com")
    old = request_open(actor=me.user, customer=me, kind="erasure")
    base = {
        "erased_at": "2026-02-01T10:00:00+00:00",
        "fields": ["Email"],
        "method": "crypto-shredding: the key to your data was destroyed",
    }
    DataRequest.objects.filter(pk=old.pk).update(
        status="completed",
        outcome="Your data was erased.",
        certificate={**base, "backups_expire_by": "2026-03-03"},
    )
    new = request_open(actor=me.user, customer=me, kind="objection")
    DataRequest.objects.filter(pk=new.pk).update(
        certificate={**base, "backups": "Words of the certificate."}
    )
    sign_in(client, me.user)
    page = my_data(client)
    assert "The last backup holding it expires by 2026-03-03." in page
    assert "Words of the certificate." in page
    assert page.count("Crypto-shredding: the key to your data was destroyed.") == 2
