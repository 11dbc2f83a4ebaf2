"""The hook through which monitoring hears of reveals without access importing it."""

import pytest

from apps.access import watchers
from apps.access.errors import AccessForbidden
from apps.access.services import policy_set, reveal_open
from apps.monitoring.services import reveal_rules_schedule
from tests.access.factories import assign
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db

REASON = "Customer called back about a parcel"


@pytest.fixture
def heard(monkeypatch) -> list[int]:
    """A watcher in place of the registered ones: the staff ids it was told of."""
    told: list[int] = []

    def watcher(*, staff_id: int) -> None:
        told.append(staff_id)

    monkeypatch.setattr(watchers, "_reveal_opened", [watcher])
    return told


def test_monitoring_watches_reveals():
    assert watchers._reveal_opened.count(reveal_rules_schedule) == 1


def test_a_watcher_hears_of_a_reveal_once_it_commits(
    support_agent, heard, django_capture_on_commit_callbacks
):
    customer = make_customer()
    assign(support_agent, customer)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        reveal_open(
            actor=support_agent, customer=customer, fields=["email"], reason=REASON
        )
    assert heard == []  # not inside the reveal's transaction
    for callback in callbacks:
        callback()
    assert heard == [support_agent.pk]


def test_a_refused_reveal_is_heard_of_by_no_one(
    support_agent, privacy_admin, heard, django_capture_on_commit_callbacks
):
    customer = make_customer()
    assign(support_agent, customer)
    policy_set(
        actor=privacy_admin,
        role=support_agent.role,
        category="contact",
        visibility="masked",
        revealable=False,
    )
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(AccessForbidden),
    ):
        reveal_open(
            actor=support_agent, customer=customer, fields=["email"], reason=REASON
        )
    assert heard == []


def test_a_failing_watcher_is_logged_and_the_next_one_still_runs(
    support_agent, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    told: list[int] = []

    def broken(*, staff_id: int) -> None:
        raise RuntimeError("broker unreachable")

    def working(*, staff_id: int) -> None:
        told.append(staff_id)

    monkeypatch.setattr(watchers, "_reveal_opened", [broken, working])
    customer = make_customer()
    assign(support_agent, customer)
    with django_capture_on_commit_callbacks(execute=True):
        reveal, _ = reveal_open(
            actor=support_agent, customer=customer, fields=["email"], reason=REASON
        )
    assert reveal.pk is not None
    assert told == [support_agent.pk]
    assert "in on_commit()" in caplog.text


def test_registering_a_watcher_again_changes_nothing(monkeypatch):
    monkeypatch.setattr(watchers, "_reveal_opened", [])

    def watcher(*, staff_id: int) -> None: ...

    watchers.reveal_opened_watch(watcher)
    watchers.reveal_opened_watch(watcher)
    assert watchers._reveal_opened == [watcher]
