"""How long a tool asks us to wait after a 429 or 503, from the headers it sends: Retry-After as
seconds or an HTTP date (RFC 9110 §10.2.3), or a rate-limit reset time as epoch seconds or as the
JavaScript date string lemlist sends in X-RateLimit-Reset
(https://developer.lemlist.com/api-reference/getting-started/rate-limits)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_JS_DATE = re.compile(r"^\w{3} (\w{3} \d{1,2} \d{4} \d{2}:\d{2}:\d{2}) GMT([+-]\d{4})")


def _parse_date(value: str) -> datetime | None:
    # lemlist's form first: the HTTP-date parser would read it too, but drop its "+0100".
    match = _JS_DATE.match(value.strip())
    if match:
        return datetime.strptime(" ".join(match.groups()), "%b %d %Y %H:%M:%S %z")
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _seconds_until(value: str, now: datetime) -> float | None:
    value = value.strip()
    try:
        number = float(value)
    except ValueError:
        moment = _parse_date(value)
        return None if moment is None else max(0.0, (moment - now).total_seconds())
    # A number this large is an epoch timestamp (a reset time), not a number of seconds.
    if number > 1_000_000_000:
        return max(0.0, number - now.timestamp())
    return max(0.0, number)


def retry_after_seconds(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait, or None when the answer does not say."""
    now = now or datetime.now(UTC)
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in ("retry-after", "x-ratelimit-reset", "x-rate-limit-reset"):
        if name in lowered:
            seconds = _seconds_until(lowered[name], now)
            if seconds is not None:
                return seconds
    return None
