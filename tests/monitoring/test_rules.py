"""Each rule: a hit, and the look-alikes that are not one."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.accounts.models import Role
from apps.monitoring.models import LookupKind, SearchBy
from apps.monitoring.rules import (
    ConsentChangeVolume,
    CustomerIdProbing,
    DisposalOffSchedule,
    KeyRotationOffSchedule,
    OffHoursReads,
    RevealVolume,
    SearchEnumeration,
)
from tests.accounts.factories import UserFactory
from tests.customers.factories import make_customer
from tests.monitoring.factories import (
    NOON,
    audited_at,
    hourly_reveals,
    lookups,
    reads,
    reveals,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def customer():
    return make_customer()


@pytest.fixture
def peer(db):
    return UserFactory(username="peer", role=Role.SUPPORT_AGENT)


# Reveal volume -----------------------------------------------------------------------


def test_a_burst_far_above_own_and_peer_baseline_is_a_hit(
    support_agent, peer, customer
):
    hourly_reveals(support_agent, customer, until=NOON, days=14, per_hour=1)
    hourly_reveals(peer, customer, until=NOON, days=14, per_hour=1)
    reveals(support_agent, customer, at=NOON - timedelta(minutes=20), count=12)

    [hit] = RevealVolume().evaluate(now=NOON)

    assert hit.staff_id == support_agent.pk
    assert hit.severity == "high"
    assert hit.evidence["reveals"] == 12
    assert hit.evidence["z_self"] >= 3
    assert hit.evidence["z_peer"] >= 3
    assert hit.evidence["peers"] == 1
    assert hit.evidence["baseline_mean"] == pytest.approx(8 / 24, abs=0.01)


def test_a_heavy_revealer_at_their_usual_pace_is_no_hit(support_agent, peer, customer):
    hourly_reveals(support_agent, customer, until=NOON, days=14, per_hour=12)
    reveals(support_agent, customer, at=NOON - timedelta(minutes=20), count=12)
    assert RevealVolume().evaluate(now=NOON) == []


def test_a_burst_that_peers_do_every_day_is_no_hit(support_agent, peer, customer):
    hourly_reveals(peer, customer, until=NOON, days=14, per_hour=12)
    reveals(support_agent, customer, at=NOON - timedelta(minutes=20), count=12)
    assert RevealVolume().evaluate(now=NOON) == []


def test_a_burst_below_the_minimum_count_is_no_hit(support_agent, customer, settings):
    settings.AMANAH_MONITOR_REVEAL_MIN = 10
    reveals(support_agent, customer, at=NOON - timedelta(minutes=5), count=9)
    assert RevealVolume().evaluate(now=NOON) == []


def test_reveals_older_than_the_hour_and_refused_ones_do_not_count(
    support_agent, customer, settings
):
    settings.AMANAH_MONITOR_REVEAL_MIN = 3
    reveals(support_agent, customer, at=NOON - timedelta(minutes=61), count=5)
    reveals(support_agent, customer, at=NOON, count=5, status="refused")
    assert RevealVolume().evaluate(now=NOON) == []


def test_reveal_volume_can_be_narrowed_to_one_agent(support_agent, peer, customer):
    reveals(support_agent, customer, at=NOON, count=12)
    reveals(peer, customer, at=NOON, count=12)
    hits = RevealVolume().evaluate(now=NOON, staff_id=peer.pk)
    assert [h.staff_id for h in hits] == [peer.pk]


# Off-hours reads ---------------------------------------------------------------------


def test_reads_in_the_evening_are_a_hit(support_agent, customer):
    evening = NOON.replace(hour=22)
    reads(support_agent, customer, at=evening - timedelta(minutes=10), count=3)

    [hit] = OffHoursReads().evaluate(now=evening)

    assert hit.staff_id == support_agent.pk
    assert hit.severity == "low"
    assert hit.evidence["reads"] == 3
    assert hit.evidence["customers"] == 1
    assert hit.evidence["working_hours"] == "07:00-20:00"


def test_reads_in_working_hours_are_no_hit(support_agent, customer):
    reads(support_agent, customer, at=NOON - timedelta(minutes=10), count=30)
    assert OffHoursReads().evaluate(now=NOON) == []


def test_the_evening_and_the_night_after_it_share_one_dedupe_key(
    support_agent, customer
):
    evening, night = NOON.replace(hour=21), NOON.replace(hour=2) + timedelta(days=1)
    reads(support_agent, customer, at=evening)
    reads(support_agent, customer, at=night)
    [first] = OffHoursReads().evaluate(now=evening + timedelta(minutes=5))
    [second] = OffHoursReads().evaluate(now=night + timedelta(minutes=5))
    assert first.dedupe_key == second.dedupe_key
    reads(support_agent, customer, at=evening + timedelta(days=1))
    [next_evening] = OffHoursReads().evaluate(
        now=evening + timedelta(days=1, minutes=5)
    )
    assert next_evening.dedupe_key != first.dedupe_key


def test_a_night_shift_reads_at_night_without_a_hit(support_agent, customer, settings):
    settings.AMANAH_MONITOR_WORK_HOURS_START = 22
    settings.AMANAH_MONITOR_WORK_HOURS_END = 6
    night = NOON.replace(hour=23)
    reads(support_agent, customer, at=night)
    assert OffHoursReads().evaluate(now=night) == []
    reads(support_agent, customer, at=NOON)
    assert len(OffHoursReads().evaluate(now=NOON)) == 1


# Enumeration -------------------------------------------------------------------------


def test_many_searches_in_a_short_window_are_a_hit(support_agent, customer, settings):
    settings.AMANAH_MONITOR_ENUMERATION_SEARCHES = 20
    lookups(support_agent, kind=LookupKind.SEARCH, at=NOON - timedelta(minutes=2))
    lookups(
        support_agent,
        kind=LookupKind.SEARCH,
        at=NOON - timedelta(minutes=1),
        count=19,
        search_by=SearchBy.PHONE,
    )
    reads(support_agent, customer, at=NOON - timedelta(minutes=1))  # one was found

    [hit] = SearchEnumeration().evaluate(now=NOON)

    assert hit.severity == "high"
    assert hit.evidence["searches"] == 20
    assert hit.evidence["by_email"] == 1
    assert hit.evidence["by_phone"] == 19
    assert hit.evidence["customers_found"] == 1


def test_searches_below_the_count_or_spread_out_are_no_hit(support_agent, settings):
    settings.AMANAH_MONITOR_ENUMERATION_SEARCHES = 20
    settings.AMANAH_MONITOR_ENUMERATION_MINUTES = 10
    lookups(support_agent, kind=LookupKind.SEARCH, at=NOON, count=19)
    lookups(
        support_agent, kind=LookupKind.SEARCH, at=NOON - timedelta(minutes=11), count=5
    )
    lookups(support_agent, kind=LookupKind.NOT_FOUND, at=NOON, count=5)
    assert SearchEnumeration().evaluate(now=NOON) == []


# Probing -----------------------------------------------------------------------------


def test_repeated_404s_on_customer_ids_are_a_hit(support_agent, settings):
    import uuid

    settings.AMANAH_MONITOR_PROBING_NOT_FOUND = 10
    for _ in range(10):
        lookups(
            support_agent,
            kind=LookupKind.NOT_FOUND,
            at=NOON - timedelta(minutes=3),
            customer_id=uuid.uuid4(),
        )
    [hit] = CustomerIdProbing().evaluate(now=NOON)
    assert hit.severity == "medium"
    assert hit.evidence["not_found"] == 10
    assert hit.evidence["distinct_ids"] == 10


def test_a_few_404s_are_no_hit(support_agent, settings):
    settings.AMANAH_MONITOR_PROBING_NOT_FOUND = 10
    lookups(support_agent, kind=LookupKind.NOT_FOUND, at=NOON, count=9)
    lookups(support_agent, kind=LookupKind.SEARCH, at=NOON, count=9)
    assert CustomerIdProbing().evaluate(now=NOON) == []


# Consent changes by staff ------------------------------------------------------------


def _consent_changes(actor, count, *, at=NOON, action="consent.withdrawn"):
    for n in range(count):
        audited_at(
            at - timedelta(minutes=n),
            actor=actor,
            action=action,
            target_type="customers.customer",
            target_id=f"00000000-0000-0000-0000-{n:012d}",
            details={"purpose": "email_marketing", "source": "staff"},
        )


def test_many_staff_consent_changes_in_an_hour_are_a_hit(support_agent, settings):
    settings.AMANAH_MONITOR_CONSENT_CHANGES_PER_HOUR = 5
    _consent_changes(support_agent, 4)
    _consent_changes(support_agent, 1, action="consent.granted")

    [hit] = ConsentChangeVolume().evaluate(now=NOON)

    assert hit.staff_id == support_agent.pk
    assert hit.evidence["changes"] == 5
    assert hit.evidence["withdrawn"] == 4
    assert hit.evidence["granted"] == 1
    assert hit.evidence["customers"] == 4


def test_customers_own_consent_changes_and_a_few_by_staff_are_no_hit(
    support_agent, customer_user, settings
):
    settings.AMANAH_MONITOR_CONSENT_CHANGES_PER_HOUR = 5
    _consent_changes(customer_user, 10)
    _consent_changes(support_agent, 4)
    _consent_changes(support_agent, 5, at=NOON - timedelta(hours=2))
    assert ConsentChangeVolume().evaluate(now=NOON) == []


# Disposal outside its schedule -------------------------------------------------------


def _disposal_at(at, actor=None):
    return audited_at(
        at,
        actor=actor,
        action="disposal.run_started",
        target_type="retention.disposalrun",
        target_id="7",
        details={"batch_size": 2000},
    )


def test_a_disposal_run_at_noon_is_off_schedule(privacy_admin):
    event = _disposal_at(NOON, actor=privacy_admin)
    [hit] = DisposalOffSchedule().evaluate(now=NOON + timedelta(minutes=5))
    assert hit.staff_id == privacy_admin.pk
    assert hit.evidence == {
        "audit_seq": event.seq,
        "action": "disposal.run_started",
        "run_id": 7,
        "local_time": "12:00",
        "scheduled_at": "02:30",
        "tolerance_minutes": 60,
    }
    assert hit.dedupe_key == f"disposal_off_schedule:{event.seq}"


def test_the_nightly_run_is_on_schedule(db):
    night = NOON.replace(hour=2, minute=30)
    _disposal_at(night)
    _disposal_at(night + timedelta(minutes=50))
    assert DisposalOffSchedule().evaluate(now=night + timedelta(hours=1)) == []


def test_the_tolerance_wraps_around_midnight(settings):
    settings.AMANAH_DISPOSAL_AT = "00:10"
    late = NOON.replace(hour=23, minute=40)
    _disposal_at(late)
    assert DisposalOffSchedule().evaluate(now=late + timedelta(minutes=1)) == []
    _disposal_at(late - timedelta(hours=2))
    assert len(DisposalOffSchedule().evaluate(now=late + timedelta(minutes=1))) == 1


def test_a_bad_disposal_time_setting_is_a_clear_error(settings, db):
    settings.AMANAH_DISPOSAL_AT = "half past two"
    with pytest.raises(ImproperlyConfigured, match="AMANAH_DISPOSAL_AT"):
        DisposalOffSchedule().evaluate(now=NOON)


# Key rotation outside an announced window --------------------------------------------


def _rotation_at(at):
    return audited_at(
        at,
        actor=None,
        action="keys.rotation_started",
        details={"to_version": 2, "pending": 40},
    )


def test_an_unannounced_key_rotation_is_a_hit(settings):
    settings.AMANAH_MONITOR_KEY_ROTATION_WINDOWS = []
    event = _rotation_at(NOON)
    [hit] = KeyRotationOffSchedule().evaluate(now=NOON + timedelta(minutes=1))
    assert hit.severity == "high"
    assert hit.staff_id is None
    assert hit.evidence == {"audit_seq": event.seq, "to_version": 2, "pending": 40}


def test_beats_own_epoch_rotation_is_announced_by_the_schedule(settings):
    settings.AMANAH_MONITOR_KEY_ROTATION_WINDOWS = []
    audited_at(
        NOON,
        actor=None,
        action="keys.rotation_started",
        details={"to_version": 2, "pending": 40, "scheduled": True},
    )
    assert KeyRotationOffSchedule().evaluate(now=NOON + timedelta(minutes=1)) == []


def test_a_rotation_inside_an_announced_window_is_no_hit(settings):
    settings.AMANAH_MONITOR_KEY_ROTATION_WINDOWS = [
        "2026-11-01T00:00/2026-11-02T00:00",
        "2026-11-18T11:00:00+00:00/2026-11-18T13:00:00+00:00",
    ]
    _rotation_at(NOON)
    assert KeyRotationOffSchedule().evaluate(now=NOON + timedelta(minutes=1)) == []
    _rotation_at(NOON + timedelta(hours=2))
    assert len(KeyRotationOffSchedule().evaluate(now=NOON + timedelta(hours=3))) == 1


@pytest.mark.parametrize(
    "window", ["tomorrow", "2026-11-18T13:00/2026-11-18T11:00", "2026-11-18T11:00"]
)
def test_a_bad_rotation_window_is_a_clear_error(settings, db, window):
    settings.AMANAH_MONITOR_KEY_ROTATION_WINDOWS = [window]
    with pytest.raises(
        ImproperlyConfigured, match="AMANAH_MONITOR_KEY_ROTATION_WINDOWS"
    ):
        KeyRotationOffSchedule().evaluate(now=NOON)


def test_a_malformed_schedule_is_a_start_up_error(settings):
    from apps.monitoring.checks import check_schedules

    settings.AMANAH_DISPOSAL_AT = "half past two"
    assert [e.id for e in check_schedules(None)] == ["monitoring.E001"]
    settings.AMANAH_DISPOSAL_AT = "02:30"
    assert check_schedules(None) == []
