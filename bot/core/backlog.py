"""Work that runs after an ack, with a bounded backlog: when it is full, new work is refused at
once, so the caller answers "busy" instead of queueing work that would only be done too late.
A thread pool for work that holds its thread (BoundedPool), and an admission for work that
waits elsewhere (Admission) whose bound follows how late the admitted work is reached."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bot.core.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger(__name__)


class BoundedPool:
    """`threads` run at once; at most `backlog` more wait; beyond that `try_submit` says no."""

    def __init__(self, threads: int, backlog: int, name: str):
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        self._room = threading.BoundedSemaphore(threads + backlog)

    def try_submit(self, work: Callable[..., object], /, *args: object) -> bool:
        """Run `work(*args)` on the pool, or return False at once when it is full."""
        if not self._room.acquire(blocking=False):
            return False
        try:
            self._pool.submit(self._run, work, args)
        except RuntimeError:  # shutting down
            self._room.release()
            return False
        return True

    def _run(self, work: Callable[..., object], args: tuple) -> None:
        try:
            work(*args)
        except Exception:
            log.exception("work after an ack failed")
        finally:
            self._room.release()

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)


class Admission:
    """Lets work in while it can still be reached in time.

    At most `limit` pieces are inside at once (from `try_enter` to `Ticket.leave`). Of those,
    the ones not yet reached (the part of the work that has a deadline) are kept to what the
    recent rate of reaching gets through in `target` seconds: by Little's law a queue of N
    reached at R per second is N / R seconds long. Never fewer than `floor`, so a quiet process
    takes a burst at once. The rate is measured, so the bound follows the process's speed (a
    busy machine, a slow Slack) where a fixed one is right for one speed only; and as the work
    shares the CPU, past that bound every piece would come late, not only the last ones."""

    def __init__(
        self,
        limit: int,
        *,
        floor: int,
        target: float,
        window: float = 1.0,
        clock: Clock = SYSTEM_CLOCK,
    ):
        self.limit, self.floor, self.target, self.window = limit, floor, target, window
        self._clock = clock
        self._lock = threading.Lock()
        self._inside = 0
        self._waiting = 0
        self._reached_at: deque[float] = deque()

    def try_enter(self) -> Ticket | None:
        """A ticket for one piece of work, or None at once when there is no room for it."""
        with self._lock:
            if self._inside >= self.limit:
                return None
            if self._waiting >= max(self.floor, self._rate() * self.target):
                return None
            self._inside += 1
            self._waiting += 1
            return Ticket(self)

    @property
    def inside(self) -> int:
        with self._lock:
            return self._inside

    def _reached(self, in_time: bool) -> None:
        with self._lock:
            self._waiting -= 1
            if in_time:
                self._reached_at.append(self._clock.monotonic())

    def _left(self) -> None:
        with self._lock:
            self._inside -= 1

    def _rate(self) -> float:
        """Pieces reached in time per second lately (over at least a quarter of the window)."""
        now = self._clock.monotonic()
        while self._reached_at and now - self._reached_at[0] > self.window:
            self._reached_at.popleft()
        if not self._reached_at:
            return 0.0
        return len(self._reached_at) / max(now - self._reached_at[0], self.window / 4)


class Ticket:
    """One piece of work let in: `reached()` once it has met its deadline, `leave()` when it
    is over (given up, if it never was reached: that counts in no rate)."""

    def __init__(self, admission: Admission):
        self._admission = admission
        self._reached = False
        self._left = False

    def reached(self, *, in_time: bool = True) -> None:
        if not self._reached:
            self._reached = True
            self._admission._reached(in_time)

    def leave(self) -> None:
        self.reached(in_time=False)
        if not self._left:
            self._left = True
            self._admission._left()
