"""Legal notification deadlines computed from rules (pure functions, no database).

Hours are absolute (72 h across a daylight-saving change is 72 real hours); calendar
and business days are counted on the jurisdiction's own calendar, keeping the wall-clock
time, and business days skip weekends and the jurisdiction's public holidays.
"""

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

EU = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
        "IS",
        "LI",
        "NO",
    ]  # with the EEA, which applies the GDPR too
)

TIME_ZONES = {
    "EU": "Europe/Brussels",
    "GB": "Europe/London",
    "ID": "Asia/Jakarta",
    "SG": "Asia/Singapore",
    "BR": "America/Sao_Paulo",
    "AU": "Australia/Sydney",
    "US-CA": "America/Los_Angeles",
    "US-WA": "America/Los_Angeles",
    "US-TX": "America/Chicago",
    "US-NY": "America/New_York",
    "US-FL": "America/New_York",
}


def zone_for(jurisdiction: str) -> ZoneInfo:
    return ZoneInfo(TIME_ZONES.get(jurisdiction, "UTC"))


def holiday_country(jurisdiction: str) -> str:
    return jurisdiction.split("-", 1)[0]


def add_business_days(
    start: datetime, days: int, holidays: Iterable[date], zone: ZoneInfo
) -> datetime:
    """`days` business days after `start`, at the same local time."""
    closed = set(holidays)
    local = start.astimezone(zone)
    moment, counted = local, 0
    while counted < days:
        moment = moment + timedelta(days=1)
        if moment.weekday() < 5 and moment.date() not in closed:
            counted += 1
    return moment


def add_calendar_days(start: datetime, days: int, zone: ZoneInfo) -> datetime:
    # Arithmetic on a zone-aware time keeps the wall-clock time across DST changes.
    return start.astimezone(zone) + timedelta(days=days)


def add_hours(start: datetime, hours: int) -> datetime:
    # In UTC: Python adds wall-clock time to a zone-aware datetime, which would make
    # "72 hours" across a daylight-saving change 71 or 73 real hours.
    return start.astimezone(UTC) + timedelta(hours=hours)


def due_at(
    *, start: datetime, duration: int | None, unit: str, jurisdiction: str, holidays=()
) -> datetime | None:
    """When a deadline falls; None for "without undue delay" (no fixed time)."""
    if duration is None:
        return None
    zone = zone_for(jurisdiction)
    if unit == "hours":
        return add_hours(start, duration)
    if unit == "calendar_days":
        return add_calendar_days(start, duration, zone)
    if unit == "business_days":
        return add_business_days(start, duration, holidays, zone)
    raise ValueError(f"Unknown unit {unit!r}.")


def affected_in(jurisdiction: str, counts: dict[tuple[str, str], int]) -> int:
    """How many affected people live in a jurisdiction, from counts per (country,
    region): `EU` is the union (and EEA), `US-CA` a region, anything else a country."""
    if jurisdiction == "EU":
        return sum(n for (country, _), n in counts.items() if country in EU)
    if "-" in jurisdiction:
        return sum(n for (_, region), n in counts.items() if region == jurisdiction)
    return sum(n for (country, _), n in counts.items() if country == jurisdiction)
