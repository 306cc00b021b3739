"""One budget of Slack calls per workspace, shared by every process: Slack limits each Web API
method per workspace ("per API method per workspace/team per app"), and chat.postMessage per
channel, so calls made by many threads and processes for one workspace must share those limits
or meet 429s (https://docs.slack.dev/apis/web-api/rate-limits).

The windows are the `limits` library's moving windows, on Redis when REDIS_URL is set so every
process draws from the same count; a Redis that fails is logged and counted, and the process
falls back to its own count (fail open, as every limit here does). Each allowance sits a little
under its tier, leaving room for calls made outside the budget (a form, a Home tab).

Callers choose per call: `spend` takes a slot only if one is free now (what may be skipped: a
live preview, a progress line), `wait` waits for one (what must arrive: an email, the finished
parent).
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from bot.core.metrics import REDIS_FAIL_OPEN

log = logging.getLogger(__name__)

KEY_PREFIX = "coldcopy:slack-budget"

# What ColdCopy allows itself, per workspace (chat.postMessage: per channel), against each
# method's tier on its reference page: Tier 2 "20+ per minute", Tier 3 "50+ per minute",
# Tier 4 "100+ per minute", chat.postMessage "1 per second per channel".
ALLOWANCES: dict[str, RateLimitItem] = {
    "chat.startStream": parse("18/minute"),  # Tier 2
    "chat.stopStream": parse("18/minute"),  # Tier 2
    "chat.appendStream": parse("90/minute"),  # Tier 4
    "chat.update": parse("45/minute"),  # Tier 3
    "chat.delete": parse("45/minute"),  # Tier 3
    "conversations.join": parse("45/minute"),  # Tier 3
    "chat.postMessage": parse("1/second"),  # special: per channel
}
PER_CHANNEL = frozenset({"chat.postMessage"})
# A Redis that is down is said in the log at most this often (every check counts in a metric).
WARN_EVERY_SECONDS = 30.0
RETRY_SHARED_AFTER_SECONDS = 5.0


class SlackBudget:
    def __init__(self, storage: Storage | None = None):
        self._limiter = MovingWindowRateLimiter(storage or MemoryStorage())
        # This process's own count, for when the shared one cannot be reached.
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._lock = threading.Lock()
        self._quiet_until = 0.0
        self._shared_down_until = 0.0

    @classmethod
    def on(cls, client: redis.Redis | None) -> SlackBudget:
        """Shared through `client` (Redis) when there is one, else this process's own."""
        if client is None:
            return cls()
        return cls(
            RedisStorage(
                "redis://",
                connection_pool=client.connection_pool,
                key_prefix=KEY_PREFIX,
                wrap_exceptions=True,
            )
        )

    def spend(self, method: str, team_id: str | None, channel: str | None = None) -> bool:
        """Take a slot of `method`'s allowance if one is free now; False (nothing taken) if not.
        Methods without an allowance are always free."""
        item = ALLOWANCES.get(method)
        if item is None:
            return True
        keys = self._keys(method, team_id, channel)
        if time.monotonic() >= self._shared_down_until:
            try:
                return self._limiter.hit(item, *keys)
            except (StorageError, redis.RedisError) as exc:
                self._failed_open(exc)
        with self._lock:
            return self._local.hit(item, *keys)

    def wait(
        self, method: str, team_id: str | None, channel: str | None = None, *, up_to: float
    ) -> bool:
        """Wait (at most `up_to` seconds) for a slot of `method`'s allowance and take it; False
        when none freed in time (the call then goes out anyway and the client's retry handler
        rides out a 429)."""
        deadline = time.monotonic() + up_to
        while not self.spend(method, team_id, channel):
            pause = min(self._until_free(method, team_id, channel), deadline - time.monotonic())
            if pause <= 0:
                return False
            time.sleep(pause)
        return True

    def _until_free(self, method: str, team_id: str | None, channel: str | None) -> float:
        item = ALLOWANCES[method]
        keys = self._keys(method, team_id, channel)
        try:
            if time.monotonic() < self._shared_down_until:
                raise StorageError(ConnectionError("the shared budget is away"))
            stats = self._limiter.get_window_stats(item, *keys)
        except (StorageError, redis.RedisError):
            with self._lock:
                stats = self._local.get_window_stats(item, *keys)
        # The moving window frees a slot when its oldest hit leaves it.
        return max(0.01, min(stats.reset_time - time.time(), item.get_expiry()))

    @staticmethod
    def _keys(method: str, team_id: str | None, channel: str | None) -> tuple[str, ...]:
        team = team_id or "-"
        return (team, method, channel or "-") if method in PER_CHANNEL else (team, method)

    def _failed_open(self, exc: Exception) -> None:
        REDIS_FAIL_OPEN.labels(operation="slack_budget").inc()
        now = time.monotonic()
        # Asked again after a pause, not on every call: a silent Redis costs a timeout each.
        self._shared_down_until = now + RETRY_SHARED_AFTER_SECONDS
        with self._lock:
            if now < self._quiet_until:
                return  # said lately; the metric counts every one
            self._quiet_until = now + WARN_EVERY_SECONDS
        cause = getattr(exc, "storage_error", exc)
        log.warning("Slack budget on Redis unavailable, counting in this process: %s", cause)
