import base64
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.audit.models import AuditEvent
from apps.crypto.models import DataKey
from apps.crypto.services import data_keys_rotate
from apps.customers.selectors import customer_get
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db

V2 = base64.b64encode(b"\x02" * 32).decode()


def test_rotation_rewraps_every_key_and_the_old_master_key_can_go(settings):
    v1 = settings.AMANAH_MASTER_KEYS
    customers = [make_customer(email=f"rot{i}@example.com") for i in range(5)]
    settings.AMANAH_MASTER_KEYS = f"2:{V2},{v1}"

    out = io.StringIO()
    call_command("rotate_keys", "--batch-size", "2", stdout=out, stderr=io.StringIO())
    assert "Rewrapped 5 data keys under master key v2; 0 left." in out.getvalue()
    assert set(DataKey.objects.values_list("kek_version", flat=True)) == {2}
    assert list(
        AuditEvent.objects.filter(action__startswith="keys.")
        .order_by("id")
        .values_list("action", flat=True)
    ) == ["keys.activated", "keys.rotation_started", "keys.rotation_completed"]

    settings.AMANAH_MASTER_KEYS = f"2:{V2}"  # v1 removed from the environment
    for i, customer in enumerate(customers):
        assert customer_get(customer_id=customer.pk).email == f"rot{i}@example.com"


def test_rotation_is_resumable_after_an_interruption(settings, monkeypatch):
    v1 = settings.AMANAH_MASTER_KEYS
    for _ in range(5):
        make_customer()
    settings.AMANAH_MASTER_KEYS = f"2:{V2},{v1}"

    from apps.crypto import services

    real, calls = services._rewrap_batch, {"n": 0}

    def crash_on_second_batch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("worker killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "_rewrap_batch", crash_on_second_batch)
    with pytest.raises(RuntimeError):
        data_keys_rotate(actor=None, batch_size=2)
    assert DataKey.objects.filter(kek_version=2).count() == 2

    monkeypatch.setattr(services, "_rewrap_batch", real)
    result = data_keys_rotate(actor=None, batch_size=2)
    assert (result.rewrapped, result.remaining) == (3, 0)


def test_rotation_skips_destroyed_keys(settings):
    from apps.retention.services import customer_erase

    v1 = settings.AMANAH_MASTER_KEYS
    erased = make_customer()
    customer_erase(actor=None, customer=erased)
    make_customer()
    settings.AMANAH_MASTER_KEYS = f"2:{V2},{v1}"
    assert data_keys_rotate(actor=None).rewrapped == 1


def test_rotation_without_the_old_key_fails_with_one_line(settings):
    make_customer()
    settings.AMANAH_MASTER_KEYS = f"2:{V2}"
    with pytest.raises(CommandError, match="Master key version 1 is not in"):
        call_command("rotate_keys", stdout=io.StringIO(), stderr=io.StringIO())
    assert DataKey.objects.filter(kek_version=2).count() == 0
