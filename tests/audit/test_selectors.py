"""Reads of the audit trail by action, period, actor and role (what the monitoring
rules aggregate over), and the trail page's filter by username."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.accounts.models import Role
from apps.audit import services as audit
from apps.audit.selectors import audit_event_list, audit_event_list_between
from tests.accounts.factories import UserFactory

pytestmark = pytest.mark.django_db


def _actions(events) -> list[str]:
    return sorted(events.values_list("action", flat=True))


def test_events_between_are_after_the_start_and_up_to_the_end():
    agent = UserFactory(username="agent", role=Role.SUPPORT_AGENT)
    audit.record(actor=agent, action="consent.granted")
    start = timezone.now()
    audit.record(actor=agent, action="consent.withdrawn")
    end = timezone.now()
    audit.record(actor=agent, action="consent.granted")

    events = audit_event_list_between(
        actions=("consent.granted", "consent.withdrawn"), after=start, until=end
    )
    assert _actions(events) == ["consent.withdrawn"]


def test_events_between_keep_only_the_actions_actor_and_roles_asked():
    agent = UserFactory(username="agent", role=Role.SUPPORT_AGENT)
    other = UserFactory(username="other", role=Role.SUPPORT_AGENT)
    admin = UserFactory(username="admin", role=Role.PRIVACY_ADMIN)
    start = timezone.now() - timedelta(seconds=1)
    audit.record(actor=agent, action="consent.granted")
    audit.record(actor=agent, action="keys.rotated")
    audit.record(actor=other, action="consent.granted")
    audit.record(actor=admin, action="consent.withdrawn")
    audit.record(actor=None, action="consent.withdrawn")
    end = timezone.now()
    consent = ("consent.granted", "consent.withdrawn")

    everyone = audit_event_list_between(actions=consent, after=start, until=end)
    assert everyone.count() == 4
    mine = audit_event_list_between(
        actions=consent, after=start, until=end, actor_id=agent.pk
    )
    assert list(mine.values_list("actor_id", "action")) == [
        (agent.pk, "consent.granted")
    ]
    agents = audit_event_list_between(
        actions=consent, after=start, until=end, actor_roles=[Role.SUPPORT_AGENT]
    )
    assert sorted(agents.values_list("actor_id", flat=True)) == sorted(
        [agent.pk, other.pk]
    )


def test_the_trail_filters_by_the_actor_username():
    agent = UserFactory(username="agent", role=Role.SUPPORT_AGENT)
    UserFactory(username="agent2", role=Role.SUPPORT_AGENT)
    audit.record(actor=agent, action="consent.granted")
    audit.record(actor=None, action="keys.rotated")

    assert _actions(audit_event_list(actor_username="agent")) == ["consent.granted"]
    assert not audit_event_list(actor_username="agent2").exists()
    assert not audit_event_list(actor_username="nobody").exists()
