"""Reveals under real concurrency on PostgreSQL: many at once for one agent, racing
the alerts a real worker raises, and beside every other path that takes locks. Each
thread has a connection of its own, as each web process and worker does."""

import threading
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone
from rest_framework.test import APIClient

from apps.access.errors import RevealsSuspended
from apps.access.models import Interaction, Reveal, RevealStatus
from apps.access.services import (
    interaction_close,
    interactions_expire,
    reveal_open,
    reveals_suspend,
)
from apps.access.services import interactions as services
from apps.accounts.models import Role
from apps.accounts.services import token_issue
from apps.audit.selectors import audit_chain_verify
from apps.consent.services import consent_record
from apps.monitoring.models import Alert
from apps.monitoring.services import alert_suspend_reveals
from apps.monitoring.tasks import rules_evaluate_for_staff_task
from tests.access.factories import assign, assign_then_expire
from tests.accounts.factories import UserFactory
from tests.brokers import redis_url_or_skip, thread_worker
from tests.concurrency import at_once
from tests.consent.factories import reseed_purposes
from tests.customers.factories import make_customer
from tests.monitoring.factories import make_alert

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

REASON = "Customer called about a late refund"


def _reveal_over_api(
    token: str, customer_id, codes: list[str] | None = None
) -> Callable[[], int]:
    """A reveal over the API, answering its status; an error's code is added to
    `codes`, if given."""

    def post() -> int:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        response = client.post(
            f"/api/v1/customers/{customer_id}/reveal/",
            {"fields": ["email"], "reason": REASON},
            format="json",
        )
        if codes is not None and response.status_code != 200:
            codes.append(response.json()["code"])
        return response.status_code

    return post


@pytest.fixture
def agent_on_case(db):
    agent = UserFactory(username="agent", role=Role.SUPPORT_AGENT)
    customer = make_customer()
    assign(agent, customer)
    return agent, customer, token_issue(user=agent).key


def test_forty_reveals_at_once_by_one_agent_answer_and_hold_the_limit(
    settings, agent_on_case
):
    settings.AMANAH_REVEALS_PER_HOUR = 20
    agent, customer, token = agent_on_case

    codes = at_once([_reveal_over_api(token, customer.pk) for _ in range(40)])

    assert Counter(codes) == {200: 20, 429: 20}
    assert (
        Reveal.objects.filter(staff=agent).exclude(status=RevealStatus.REFUSED).count()
        == 20
    )
    report = audit_chain_verify()
    assert report.ok, report.summary


def test_a_broker_that_refuses_the_monitoring_task_leaves_the_reveal_answered(
    monkeypatch, agent_on_case, caplog
):
    agent, customer, token = agent_on_case

    def broker_down(*args, **kwargs):
        raise OperationalError("broker unreachable")

    monkeypatch.setattr(rules_evaluate_for_staff_task, "delay", broker_down)

    assert _reveal_over_api(token, customer.pk)() == 200
    assert Reveal.objects.filter(staff=agent, status=RevealStatus.GRANTED).count() == 1
    assert "in on_commit()" in caplog.text


def test_every_locking_path_at_once_for_one_agent_and_customer(agent_on_case):
    """Reveals, consent changes by the agent, suspensions by an officer and by an
    alert, an interaction closed and the expiry job, all on one agent and one
    customer at once: no deadlock, and the audit chain stays whole."""
    agent, customer, _ = agent_on_case
    reseed_purposes()  # a transactional test starts from a flushed database
    officer = UserFactory(username="officer", role=Role.COMPLIANCE_OFFICER)
    second = assign(agent, customer)
    for _ in range(3):
        assign_then_expire(agent, make_customer())
    alert = make_alert(staff=agent)

    jobs: list[Callable[[], object]] = []
    for n in range(6):
        jobs += [
            lambda: reveal_open(
                actor=agent, customer=customer, fields=["phone"], reason=REASON
            ),
            lambda n=n: consent_record(
                actor=agent,
                customer=customer,
                purpose_code="marketing_sms",
                granted=n % 2 == 0,
                source="staff",
                reason="Customer asked on the phone",
            ),
        ]
    jobs += [
        lambda: reveals_suspend(actor=officer, staff=agent, cause="test"),
        lambda: alert_suspend_reveals(actor=officer, alert=alert),
        lambda: interaction_close(actor=agent, interaction=second),
        interactions_expire,
    ]

    results = at_once(jobs)

    # A reveal after the officer's alert suspended the agent's reveals is refused.
    failures = [
        repr(r)
        for r in results
        if isinstance(r, Exception) and not isinstance(r, RevealsSuspended)
    ]
    assert failures == []
    report = audit_chain_verify()
    assert report.ok, report.summary


def test_a_case_closing_while_another_opens_leaves_the_new_one_its_grant(
    agent_on_case,
):
    """Close the old case and open a new one on the same customer at the same moment:
    the grant the new case counts on survives the old one's withdrawal."""
    from guardian.shortcuts import get_perms

    from apps.access.models import Interaction

    agent, customer, _ = agent_on_case
    for _ in range(8):
        [old] = Interaction.objects.filter(staff=agent, closed_at__isnull=True)
        results = at_once(
            [
                lambda old=old: interaction_close(actor=agent, interaction=old),
                lambda: assign(agent, customer),
            ]
        )
        assert [r for r in results if isinstance(r, Exception)] == []
        assert "view_customer" in get_perms(agent, customer)


def test_reveals_racing_their_case_closing_never_outlive_it(settings, agent_on_case):
    """Reveals opened while their case closes: each is refused (the case is gone) or
    granted before the close, which then ends it. None outlives the case."""
    from apps.access.models import Interaction
    from apps.core.errors import NotFound

    settings.AMANAH_REVEALS_PER_HOUR = 1000
    agent, customer, _ = agent_on_case

    def reveal():
        return reveal_open(
            actor=agent, customer=customer, fields=["email"], reason=REASON
        )

    for _ in range(6):
        [case] = Interaction.objects.filter(staff=agent, closed_at__isnull=True)
        results = at_once(
            [lambda case=case: interaction_close(actor=agent, interaction=case)]
            + [reveal] * 4
        )
        unexpected = [r for r in results if isinstance(r, Exception)]
        assert [r for r in unexpected if not isinstance(r, NotFound)] == []
        case.refresh_from_db()
        assert case.closed_at is not None
        outliving = Reveal.objects.filter(
            interaction=case,
            status=RevealStatus.GRANTED,
            expires_at__gt=case.closed_at,
        )
        assert not outliving.exists()
        unbound = Reveal.objects.filter(staff=agent, interaction__isnull=True)
        assert not unbound.exists()
        assign(agent, customer)
    report = audit_chain_verify()
    assert report.ok, report.summary


@pytest.fixture
def worker_on_redis(settings, monkeypatch):
    """A real Celery worker (threads) on Redis, consuming a queue of this test's own;
    the code's `.delay()` calls go through its app."""
    queue = f"amanah-test-{uuid.uuid4().hex[:8]}"
    with thread_worker(redis_url_or_skip(), queue, settings, monkeypatch) as app:
        yield app


def test_reveals_racing_the_alert_a_worker_raises_all_answer(
    settings, agent_on_case, worker_on_redis
):
    """The worker evaluates the reveal rules after each reveal commits; the alert it
    raises suspends the agent's reveals while more are being opened. Every request is
    answered: granted before the suspension (which then ends it), or refused after it
    (403 `reveals_suspended`), never a 5xx."""
    settings.AMANAH_MONITOR_REVEAL_MIN = 3
    settings.AMANAH_REVEALS_PER_HOUR = 30
    agent, customer, token = agent_on_case

    errors: list[str] = []
    codes = at_once([_reveal_over_api(token, customer.pk, errors) for _ in range(24)])

    answered = Counter(codes)
    assert set(answered) <= {200, 403}, answered
    assert set(errors) <= {"reveals_suspended"}, errors
    # The rule needs AMANAH_MONITOR_REVEAL_MIN reveals before it raises the alert.
    assert answered[200] >= settings.AMANAH_MONITOR_REVEAL_MIN, answered
    granted = Reveal.objects.filter(staff=agent).exclude(status=RevealStatus.REFUSED)
    assert granted.count() == answered[200]
    alert = None
    for _ in range(300):  # the worker's last evaluations, up to 30 s on a slow day
        alert = Alert.objects.filter(rule="reveal_volume").first()
        if alert is not None and alert.reveals_suspended_at is not None:
            break
        threading.Event().wait(0.1)
    assert alert is not None, "the worker raised no reveal_volume alert"
    assert alert.reveals_suspended_at is not None
    assert Alert.objects.filter(rule="reveal_volume", staff=agent).count() == 1
    # Each reveal granted was opened before the suspension, which ended it.
    assert not granted.filter(created_at__gte=alert.reveals_suspended_at).exists()
    assert not granted.filter(status=RevealStatus.GRANTED).exists()
    # The suspension holds: the agent's next reveals over the API are refused.
    later: list[str] = []
    assert (
        at_once([_reveal_over_api(token, customer.pk, later) for _ in range(4)])
        == [403] * 4
    )
    assert later == ["reveals_suspended"] * 4
    assert granted.count() == answered[200]
    report = audit_chain_verify()
    assert report.ok, report.summary


def test_two_expiry_runs_sharing_an_agents_customers_never_deadlock(monkeypatch):
    """Two overlapping runs of the expiry job (a backlog longer than the beat's
    minute) whose batches hold cases of the same agent with the same two customers,
    in opposite expiry order: each batch takes the grants' locks in one order."""
    agent = UserFactory(role=Role.SUPPORT_AGENT)
    first, second = make_customer(), make_customer()
    now = timezone.now()
    # By expiry: run A's batch (2) holds first, second; run B's second, first.
    for minutes, customer in ((40, first), (30, second), (20, second), (10, first)):
        Interaction.objects.filter(pk=assign(agent, customer).pk).update(
            expires_at=now - timedelta(minutes=minutes)
        )
    grant_lock = services._grant_lock
    holding = {"A": threading.Event(), "B": threading.Event()}

    def lock_then_let_the_other_run_lock(*, staff_id, customer_id):
        grant_lock(staff_id=staff_id, customer_id=customer_id)
        me = threading.current_thread().name
        if not holding[me].is_set():
            holding[me].set()
            if me == "A":  # the other run takes its first grant lock meanwhile
                holding["B"].wait(2)

    monkeypatch.setattr(services, "_grant_lock", lock_then_let_the_other_run_lock)
    outcome: dict[str, object] = {}

    def expire(name: str) -> None:
        if name == "B":
            holding["A"].wait(5)
        try:
            outcome[name] = interactions_expire(batch_size=2)
        except OperationalError as exc:
            outcome[name] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=expire, args=(n,), name=n) for n in "AB"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not [r for r in outcome.values() if isinstance(r, Exception)], outcome
    assert sum(outcome.values()) == 4
    assert not Interaction.objects.filter(closed_at__isnull=True).exists()
