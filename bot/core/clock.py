"""Time, passed in rather than read: code that acts on time (leases, sweepers, announcers,
retention) takes a `Clock`, so its tests move time forward instead of sleeping."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The wall-clock time, timezone-aware UTC: what the database stores."""

    def monotonic(self) -> float:
        """Seconds that only ever go forward, for intervals and deadlines."""

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        """Wait `seconds`, or until `stop` is set; True when it was set."""


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        return stop.wait(seconds)


SYSTEM_CLOCK = SystemClock()
