"""A clock that moves only when a test moves it: `bot.core.clock.Clock` for the lease keeper,
the sweeper, the announcer and retention, and the `clock` callable FakeSlack's rules read."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta

# How often a thread waiting on the clock looks whether its `stop` was set: Periodic.stop()
# sets a threading.Event, which cannot wake a wait on our condition.
STOP_CHECK = 0.02


class ManualClock:
    """Time that stands still until `advance`. It starts at the real time (rows the code
    writes with the system's time sort sensibly beside it) and only goes forward.

    A thread waiting in `wait` (a Periodic pass, the lease keeper) wakes once an advance takes
    the clock to its deadline, and `advance` returns when every thread it woke has run and is
    waiting again (or has ended): one pass per advance, its effects visible when `advance`
    returns, without sleeping. A wait that starts during an advance counts from the time it
    advanced to, as a late wake-up would in real time."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or datetime.now(UTC)
        self._elapsed = 0.0
        self._cond = threading.Condition()
        # thread -> (deadline in elapsed seconds, which of its waits this is)
        self._waiting: dict[threading.Thread, tuple[float, int]] = {}
        self._waits = itertools.count()

    # -- bot.core.clock.Clock -----------------------------------------------------------

    def now(self) -> datetime:
        with self._cond:
            return self._start + timedelta(seconds=self._elapsed)

    def monotonic(self) -> float:
        with self._cond:
            return 1000.0 + self._elapsed

    __call__ = monotonic  # FakeSlack(clock=...) takes a callable

    def wait(self, stop: threading.Event, seconds: float) -> bool:
        me = threading.current_thread()
        with self._cond:
            deadline = self._elapsed + seconds
            self._waiting[me] = (deadline, next(self._waits))
            self._cond.notify_all()
            try:
                while not stop.is_set() and self._elapsed < deadline:
                    self._cond.wait(STOP_CHECK)
            finally:
                del self._waiting[me]
                self._cond.notify_all()
        return stop.is_set()

    # -- moving it ------------------------------------------------------------------------

    def advance(self, seconds: float, timeout: float = 15.0) -> None:
        """Move time on by `seconds`; return once the threads it woke are waiting again."""
        with self._cond:
            self._elapsed += seconds
            woken = {
                t: w for t, (deadline, w) in self._waiting.items() if deadline <= self._elapsed
            }
            self._cond.notify_all()

            def settled() -> bool:
                return all(
                    not thread.is_alive() or self._waiting.get(thread, (0, wait))[1] != wait
                    for thread, wait in woken.items()
                )

            self._settle(settled, timeout, f"{len(woken)} thread(s) to finish their pass")

    def until_waiting(self, count: int = 1, timeout: float = 15.0) -> None:
        """Return once `count` threads wait on this clock (a thread just started may not yet)."""
        with self._cond:
            self._settle(lambda: len(self._waiting) >= count, timeout, f"{count} waiting thread(s)")

    def _settle(self, done, timeout: float, what: str) -> None:
        # A thread that ends does not notify: look again every STOP_CHECK.
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"the clock waited {timeout:g} s for {what}")
            self._cond.wait(STOP_CHECK)
