"""A client-side pacer per tool and API key over the `limits` library's moving windows, so a
run stays inside a tool's documented rate limit instead of collecting 429s. The windows live
in one process-wide memory store by default (every client for the same key shares them); a
Redis store can be passed in to share them between processes."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage, Storage
from limits.strategies import MovingWindowRateLimiter

_SHARED_STORAGE = MemoryStorage()


class PacerFull(Exception):
    """No slot in a window: the caller's retry waits `retry_after` seconds and tries again."""

    def __init__(self, retry_after: float):
        super().__init__(f"client-side rate limit: next slot in {retry_after:.2f}s")
        self.retry_after = retry_after


class Pacer:
    """Takes one slot in every window of `limits` (e.g. "10/2 seconds;60/minute")."""

    def __init__(self, tool: str, api_key: str, limits: str, storage: Storage | None = None):
        self._items: Sequence[RateLimitItem] = parse_many(limits)
        self._limiter = MovingWindowRateLimiter(storage or _SHARED_STORAGE)
        # The key is hashed: it never sits in a rate-limit store in clear.
        digest = hashlib.sha256(api_key.encode()).hexdigest()[:16]
        self._identifiers = ("coldcopy-sequencers", tool, digest)

    def take(self) -> None:
        """One request's slot, or PacerFull with the wait until the fullest window frees one."""
        full = [item for item in self._items if not self._limiter.test(item, *self._identifiers)]
        if not full:
            for item in self._items:
                self._limiter.hit(item, *self._identifiers)
            return
        resets = [self._limiter.get_window_stats(i, *self._identifiers).reset_time for i in full]
        raise PacerFull(max(0.01, max(resets) - time.time()))
