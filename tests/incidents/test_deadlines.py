from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from apps.incidents.deadlines import add_business_days, affected_in, due_at
from apps.incidents.models import DeadlineRule, IncidentStatus, PublicHoliday
from apps.incidents.selectors import deadlines_for
from apps.incidents.services import incident_transition
from tests.incidents.factories import affect, make_incident

BERLIN = ZoneInfo("Europe/Berlin")
SAO_PAULO = ZoneInfo("America/Sao_Paulo")


def test_72_hours_across_a_daylight_saving_change_are_72_real_hours():
    aware = datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN)  # clocks go forward on the 29th
    due = due_at(start=aware, duration=72, unit="hours", jurisdiction="EU")
    # Compared in UTC: Python subtracts two Berlin times by their wall clocks.
    assert due.astimezone(UTC) - aware.astimezone(UTC) == timedelta(hours=72)
    assert due.astimezone(BERLIN).hour == 13  # the wall clock moved, the duty did not


def test_calendar_days_keep_the_local_time_across_dst():
    start = datetime(2026, 10, 20, 9, 0, tzinfo=ZoneInfo("America/Los_Angeles"))
    due = due_at(start=start, duration=30, unit="calendar_days", jurisdiction="US-CA")
    local = due.astimezone(ZoneInfo("America/Los_Angeles"))
    assert (local.date().isoformat(), local.hour) == ("2026-11-19", 9)


def test_business_days_skip_the_weekend_and_a_public_holiday():
    aware = datetime(
        2026, 11, 19, 10, 0, tzinfo=SAO_PAULO
    )  # Thursday; Friday is a holiday
    holidays = [date(2026, 11, 20)]
    due = add_business_days(aware, 3, holidays, SAO_PAULO)
    assert due.astimezone(SAO_PAULO).date().isoformat() == "2026-11-25"  # Wednesday
    without_holiday = add_business_days(aware, 3, [], SAO_PAULO)
    assert without_holiday.astimezone(SAO_PAULO).date().isoformat() == "2026-11-24"


@pytest.mark.django_db
def test_brazil_holidays_are_skipped_only_for_the_seeded_years():
    holidays = PublicHoliday.objects.filter(country="BR").values_list("date", flat=True)

    def due(day: str) -> str:
        aware = datetime.fromisoformat(f"{day}T10:00").replace(tzinfo=SAO_PAULO)
        moment = add_business_days(aware, 3, list(holidays), SAO_PAULO)
        return moment.astimezone(SAO_PAULO).date().isoformat()

    assert due("2026-04-20") == "2026-04-24"  # Tiradentes, Tuesday 21st, skipped
    # 2027 is not seeded: its Tiradentes (Wednesday) counts, so the deadline is a
    # day early, on the safe side.
    assert due("2027-04-19") == "2027-04-22"


def test_affected_counts_by_jurisdiction():
    counts = {("DE", ""): 3, ("FR", ""): 2, ("US", "US-CA"): 4, ("ID", "ID-JK"): 5}
    assert affected_in("EU", counts) == 5
    assert affected_in("US-CA", counts) == 4
    assert affected_in("ID", counts) == 5
    assert affected_in("SG", counts) == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("californians", "ag_owed"), [(499, False), (500, False), (501, True)]
)
def test_california_attorney_general_threshold(privacy_admin, californians, ag_owed):
    incident = make_incident(privacy_admin)
    affect(incident, {("US", "US-CA"): californians})
    codes = {d.rule_code for d in deadlines_for(incident=incident)}
    assert "us-ca-individuals" in codes
    assert ("us-ca-attorney-general" in codes) is ag_owed


@pytest.mark.django_db
@pytest.mark.parametrize(("people", "owed"), [(249, False), (250, True), (251, True)])
def test_texas_attorney_general_threshold(privacy_admin, people, owed):
    incident = make_incident(privacy_admin)
    affect(incident, {("US", "US-TX"): people})
    assert (
        "us-tx-attorney-general"
        in {d.rule_code for d in deadlines_for(incident=incident)}
    ) is owed


@pytest.mark.django_db
def test_deadlines_are_earliest_first_and_missed_ones_say_so(privacy_admin):
    aware = datetime.now(UTC) - timedelta(hours=80)
    incident = make_incident(
        privacy_admin, aware_at=aware, detected_at=aware, occurred_at=aware
    )
    affect(incident, {("DE", ""): 10, ("ID", "ID-JK"): 10, ("US", "US-CA"): 10})
    deadlines = deadlines_for(incident=incident)
    dated = [d for d in deadlines if d.due_at]
    assert dated == sorted(dated, key=lambda d: d.due_at)
    gdpr = next(d for d in deadlines if d.rule_code == "eu-gdpr-authority")
    assert gdpr.missed
    assert gdpr.due_at == aware + timedelta(hours=72)
    california = next(d for d in deadlines if d.rule_code == "us-ca-individuals")
    assert not california.missed


@pytest.mark.django_db
def test_encrypted_data_with_safe_keys_lowers_the_duty(privacy_admin):
    incident = make_incident(privacy_admin, encrypted_keys_safe=True)
    affect(incident, {("DE", ""): 10})
    by_code = {d.rule_code: d for d in deadlines_for(incident=incident)}
    assert by_code["eu-gdpr-individuals"].exempt
    assert not by_code["eu-gdpr-authority"].exempt


@pytest.mark.django_db
def test_outages_have_no_breach_deadlines(privacy_admin):
    incident = make_incident(privacy_admin, kind="outage")
    affect(incident, {("DE", ""): 10})
    assert deadlines_for(incident=incident) == []


@pytest.mark.django_db
def test_editing_a_rule_does_not_move_a_closed_incidents_deadlines(privacy_admin):
    incident = make_incident(privacy_admin)
    affect(incident, {("ID", "ID-JK"): 3})
    before = {d.rule_code: d.due_at for d in deadlines_for(incident=incident)}
    incident = incident_transition(
        actor=privacy_admin, incident=incident, status=IncidentStatus.RESOLVED
    )
    DeadlineRule.objects.filter(code="id-uupdp-individuals").update(duration=24)
    after = {d.rule_code: d.due_at for d in deadlines_for(incident=incident)}
    assert after == before

    open_incident = make_incident(privacy_admin)
    affect(open_incident, {("ID", "ID-JK"): 3})
    moved = {d.rule_code: d.due_at for d in deadlines_for(incident=open_incident)}
    assert moved["id-uupdp-individuals"] == open_incident.aware_at + timedelta(hours=24)
