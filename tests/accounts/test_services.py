import pytest

from apps.accounts.models import Role
from apps.accounts.services import user_ensure_staff
from apps.audit.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_ensure_staff_creates_then_is_idempotent_and_audits_changes_only():
    user = user_ensure_staff(
        actor=None, username="agent", role=Role.SUPPORT_AGENT, password="pw-long-enough"
    )
    assert user.check_password("pw-long-enough")
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["user.created"]

    user_ensure_staff(
        actor=None, username="agent", role=Role.SUPPORT_AGENT, password="pw-long-enough"
    )
    assert AuditEvent.objects.count() == 1

    user = user_ensure_staff(
        actor=None,
        username="agent",
        role=Role.DELIVERY_AGENT,
        password="pw-long-enough",
    )
    assert user.role == Role.DELIVERY_AGENT
    assert AuditEvent.objects.order_by("seq").last().action == "user.reset"
