"""The embedded mode's in-memory rate limits and de-duplication, on a frozen clock: windows
move with time, waits are told in whole minutes, keys expire, and the store stays bounded."""

from __future__ import annotations

import pytest
from freezegun import freeze_time
from helpers import make_settings

from bot.domain.limits import Allowed, Deduplicator, RateLimited, RateLimiter


def test_in_memory_windows_move_with_the_clock():
    limiter = RateLimiter.from_settings(make_settings(user_rate="2/hour"))
    with freeze_time("2025-03-01 09:00:00") as clock:
        assert limiter.check("T1", "U1") == Allowed()
        clock.tick(600)
        assert limiter.check("T1", "U1") == Allowed()
        clock.tick(300)

        limited = limiter.check("T1", "U1")
        assert isinstance(limited, RateLimited)
        assert limited.retry_after == pytest.approx(45 * 60)
        assert limited.minutes == 45

        clock.tick(45 * 60 - 1)
        assert isinstance(limiter.check("T1", "U1"), RateLimited)
        clock.tick(2)  # the first hit has left the window; the second stays 10 minutes more
        assert limiter.check("T1", "U1") == Allowed()
        assert limiter.check("T1", "U1").retry_after == pytest.approx(10 * 60 - 1)


def test_minutes_round_up_and_never_show_zero():
    assert RateLimited("user", 0.2, "2 per 1 minute").minutes == 1
    assert RateLimited("user", 60.0, "2 per 1 minute").minutes == 1
    assert RateLimited("user", 61.0, "2 per 1 minute").minutes == 2
    assert RateLimited("workspace", 1799.5, "30 per 1 hour").minutes == 30


def test_in_memory_keys_expire_with_the_clock():
    dedup = Deduplicator()
    with freeze_time("2025-03-01 09:00:00") as clock:
        assert dedup.first_time("view:V1", 300) is True
        clock.tick(299)
        assert dedup.first_time("view:V1", 300) is False
        clock.tick(1)
        assert dedup.first_time("view:V1", 300) is True


def test_in_memory_dedup_is_bounded_and_forgets_the_oldest_first():
    dedup = Deduplicator(max_keys=3)
    for key in ("a", "b", "c", "d"):
        assert dedup.first_time(key, 60) is True
    assert len(dedup._seen) == 3
    assert dedup.first_time("d", 60) is False
    assert dedup.first_time("c", 60) is False
    assert dedup.first_time("a", 60) is True  # forgotten: treated as new, never as a duplicate
