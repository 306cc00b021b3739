"""Instantly's schedule takes a time zone from a fixed list, not any IANA name: this module
holds that list and maps the Slack user's IANA zone to the listed zone that keeps the same
clock all year (same UTC offset on every sample day, so the same daylight-saving dates).

The list is the enum of `campaign_schedule.schedules[].timezone` in Instantly's API v2
reference (https://developer.instantly.ai/api-reference/campaign/create-campaign, whose
example uses "Etc/GMT+12"); the 102 values below are the ones Instantly's app offers, copied
as published by the bcharleson/Instantly-MCP project (src/timezone-config.ts, one zone per
Windows time zone, which is why US Pacific is "America/Dawson"), because the
stored copy of the reference page did not show the whole enum.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from zoneinfo import ZoneInfo

INSTANTLY_TIMEZONES: tuple[str, ...] = (
    "Etc/GMT+12", "Etc/GMT+11", "Etc/GMT+10", "America/Anchorage", "America/Dawson",
    "America/Creston", "America/Chihuahua", "America/Boise", "America/Belize", "America/Chicago",
    "America/Bahia_Banderas", "America/Regina", "America/Bogota", "America/Detroit",
    "America/Indiana/Marengo", "America/Caracas", "America/Asuncion", "America/Glace_Bay",
    "America/Campo_Grande", "America/Anguilla", "America/Santiago", "America/St_Johns",
    "America/Sao_Paulo", "America/Argentina/La_Rioja", "America/Araguaina", "America/Godthab",
    "America/Montevideo", "America/Bahia", "America/Noronha", "America/Scoresbysund",
    "Atlantic/Cape_Verde", "Africa/Casablanca", "America/Danmarkshavn", "Europe/Isle_of_Man",
    "Atlantic/Canary", "Africa/Abidjan", "Arctic/Longyearbyen", "Europe/Belgrade", "Africa/Ceuta",
    "Europe/Sarajevo", "Africa/Algiers", "Africa/Windhoek", "Asia/Nicosia", "Asia/Beirut",
    "Africa/Cairo", "Asia/Damascus", "Europe/Bucharest", "Africa/Blantyre", "Europe/Helsinki",
    "Europe/Istanbul", "Asia/Jerusalem", "Africa/Tripoli", "Asia/Amman", "Asia/Baghdad",
    "Europe/Kaliningrad", "Asia/Aden", "Africa/Addis_Ababa", "Europe/Kirov", "Europe/Astrakhan",
    "Asia/Tehran", "Asia/Dubai", "Asia/Baku", "Indian/Mahe", "Asia/Tbilisi", "Asia/Yerevan",
    "Asia/Kabul", "Antarctica/Mawson", "Asia/Yekaterinburg", "Asia/Karachi", "Asia/Kolkata",
    "Asia/Colombo", "Asia/Kathmandu", "Antarctica/Vostok", "Asia/Dhaka", "Asia/Rangoon",
    "Antarctica/Davis", "Asia/Novokuznetsk", "Asia/Hong_Kong", "Asia/Krasnoyarsk", "Asia/Brunei",
    "Australia/Perth", "Asia/Taipei", "Asia/Choibalsan", "Asia/Irkutsk", "Asia/Dili",
    "Asia/Pyongyang", "Australia/Adelaide", "Australia/Darwin", "Australia/Brisbane",
    "Australia/Melbourne", "Antarctica/DumontDUrville", "Australia/Currie", "Asia/Chita",
    "Antarctica/Macquarie", "Asia/Sakhalin", "Pacific/Auckland", "Etc/GMT-12", "Pacific/Fiji",
    "Asia/Anadyr", "Asia/Kamchatka", "Etc/GMT-13", "Pacific/Apia",
)  # fmt: skip


def _samples(year: int) -> list[datetime]:
    start = datetime(year, 1, 1, 12, tzinfo=UTC)
    return [start + timedelta(days=7 * week) for week in range(53)]


@cache
def _offsets(zone: str, year: int) -> tuple[float, ...]:
    tz = ZoneInfo(zone)
    return tuple(
        (moment.astimezone(tz).utcoffset() or timedelta()).total_seconds()
        for moment in _samples(year)
    )


def instantly_timezone(iana: str, year: int | None = None) -> str:
    """The accepted zone whose clock matches `iana` on the most weekly samples of `year`
    (all of them, for any zone sharing a listed zone's rules); ties go to a zone in the same
    region ("Europe/..."), then to the list's order."""
    if iana in INSTANTLY_TIMEZONES:
        return iana
    year = year or datetime.now(UTC).year
    wanted = _offsets(iana, year)
    region = iana.split("/", 1)[0]

    def score(candidate: str) -> tuple[int, float, int, int]:
        theirs = _offsets(candidate, year)
        same = sum(a == b for a, b in zip(wanted, theirs, strict=True))
        distance = sum(abs(a - b) for a, b in zip(wanted, theirs, strict=True))
        return (
            -same,
            distance,
            0 if candidate.startswith(region + "/") else 1,
            INSTANTLY_TIMEZONES.index(candidate),
        )

    return min(INSTANTLY_TIMEZONES, key=score)
