"""Abuse protection: per-user and per-workspace rate limits and de-duplication, failing open.

Both live on Redis when `REDIS_URL` is set and in this process otherwise. Redis is a guard rail,
not the source of truth (the quota in the database is): when Redis is down, refusing or slow,
every check allows, logs one warning and counts `coldcopy_redis_fail_open_total`. A sick Redis
never makes a request look rate limited or duplicated.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import redis
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot.core.metrics import RATE_LIMIT_DENIALS, REDIS_FAIL_OPEN

if TYPE_CHECKING:
    from bot.core.settings import Settings

log = logging.getLogger(__name__)

Scope = Literal["user", "workspace"]

# A failing check aborts at its first failed Redis call, so it costs at most one connect plus
# one read: 100 ms + 100 ms stays under the 250 ms budget. Healthy Redis answers in < 1 ms.
REDIS_CONNECT_TIMEOUT = 0.1
REDIS_READ_TIMEOUT = 0.1

LIMITS_KEY_PREFIX = "coldcopy:limits"
DEDUP_KEY_PREFIX = "coldcopy:dedup:"

# The in-memory de-duplicator forgets its oldest keys beyond this many. Forgetting errs on the
# safe side (a duplicate gets through, like a sick Redis), and the job's atomic claim of its
# generation row still makes a duplicate run once.
MEMORY_DEDUP_MAX_KEYS = 10_000


def connect_redis(url: str) -> redis.Redis:
    """A client that fails fast: short timeouts and no retries.

    redis-py 8 retries connection errors and timeouts 3 times with exponential backoff by
    default, which would turn one fail-open check into seconds. With no retries a pooled
    connection broken by a Redis restart fails one check open and is then reconnected.
    """
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=REDIS_CONNECT_TIMEOUT,
        socket_timeout=REDIS_READ_TIMEOUT,
        retry=Retry(NoBackoff(), 0),
    )


def redis_reachable(client: redis.Redis) -> bool:
    """For readiness probes: does Redis answer a PING within the timeouts?"""
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def _fail_open(operation: str, error: Exception) -> None:
    cause = getattr(error, "storage_error", error)  # limits wraps redis errors in StorageError
    log.warning(
        "Redis unavailable during %s, allowing the request (fail open): %s: %s",
        operation,
        type(cause).__name__,
        cause,
    )
    REDIS_FAIL_OPEN.labels(operation=operation).inc()


@dataclass(frozen=True)
class Allowed:
    """The request may go ahead. `failed_open` says Redis could not be asked."""

    failed_open: bool = False


@dataclass(frozen=True)
class RateLimited:
    """A limit of `scope` is used up; a slot frees in `retry_after` seconds."""

    scope: Scope
    retry_after: float
    limit: str

    @property
    def minutes(self) -> int:
        """Whole minutes to wait, rounded up, at least 1: "run /coldcopy again in N minutes"."""
        return max(1, math.ceil(self.retry_after / 60))


# One moving-window hit over several limits, all or nothing, in one round trip. Each window is
# the `limits` library's own Redis list (newest hit first, trimmed to the limit, EXPIRE = the
# window's length), under the library's key names: its strategies read these keys unchanged.
# A limit is full when its limit-th newest hit is still inside the window; then nothing is
# pushed anywhere and the script returns, for each full limit, its position and that hit.
HIT_ALL_WINDOWS = """
local now = tonumber(ARGV[1])
local full = {}
for i, key in ipairs(KEYS) do
    local limit = tonumber(ARGV[2 * i])
    local expiry = tonumber(ARGV[2 * i + 1])
    local entry = redis.call('lindex', key, limit - 1)
    if entry and tonumber(entry) >= now - expiry then
        table.insert(full, i)
        table.insert(full, entry)
    end
end
if #full > 0 then
    return full
end
for i, key in ipairs(KEYS) do
    redis.call('lpush', key, ARGV[1])
    redis.call('ltrim', key, 0, tonumber(ARGV[2 * i]) - 1)
    redis.call('expire', key, tonumber(ARGV[2 * i + 1]))
end
return full
"""


class RateLimiter:
    """Moving-window limits per user and per workspace, in the `limits` library's windows.

    On Redis one Lua script (registered once, then sent by its SHA) checks every window of
    both scopes and takes a slot in all of them or in none, atomically: one round trip per
    check, exact under any concurrency, and no key outlives its window. In memory the
    library's strategy does the same under one lock. The hit timestamps come from this host's
    clock, so replicas need synchronised clocks (NTP), as for any time window.
    """

    def __init__(
        self,
        storage: Storage,
        user_limits: Sequence[RateLimitItem],
        workspace_limits: Sequence[RateLimitItem],
    ):
        self._storage = storage
        # The moving window is exact (no approximation at window edges), and its reset time is
        # when the oldest hit leaves the window, i.e. when the user can really run again.
        self._strategy = MovingWindowRateLimiter(storage)
        self._scopes: tuple[tuple[Scope, Sequence[RateLimitItem]], ...] = (
            ("user", user_limits),
            ("workspace", workspace_limits),
        )
        self._hit_all = (
            storage.get_connection().register_script(HIT_ALL_WINDOWS)
            if isinstance(storage, RedisStorage)
            else None
        )
        # MemoryStorage alone lets 6 of 20 simultaneous hits through a 5/minute limit now and
        # then (its per-key locks are created and dropped without a lock of their own).
        self._memory_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, client: redis.Redis | None = None) -> RateLimiter:
        """On Redis when `settings.redis_url` is set (or `client` is given), in memory otherwise."""
        if client is None and settings.redis_url:
            client = connect_redis(settings.redis_url)
        storage: Storage
        if client is None:
            storage = MemoryStorage()
        else:
            # The storage shares the client's pool, so it inherits its timeouts and no-retry
            # policy; wrap_exceptions turns every redis error into one StorageError to catch.
            storage = RedisStorage(
                "redis://",
                connection_pool=client.connection_pool,
                key_prefix=LIMITS_KEY_PREFIX,
                wrap_exceptions=True,
            )
        return cls(storage, parse_many(settings.user_rate), parse_many(settings.workspace_rate))

    def with_limits(
        self, user_limits: Sequence[RateLimitItem], workspace_limits: Sequence[RateLimitItem] = ()
    ) -> RateLimiter:
        """Other limits on the same storage (Redis or this process), e.g. for rewrites."""
        return RateLimiter(self._storage, user_limits, workspace_limits)

    def check(self, team_id: str, user_id: str) -> Allowed | RateLimited:
        """Take one slot of the user's and of the workspace's limits, or say which one is full."""
        try:
            if self._hit_all is not None:
                result = self._check_redis(team_id, user_id)
            else:
                with self._memory_lock:
                    result = self._check_memory(team_id, user_id)
        except (StorageError, redis.RedisError) as exc:
            _fail_open("rate_limit", exc)
            return Allowed(failed_open=True)
        if isinstance(result, RateLimited):
            RATE_LIMIT_DENIALS.labels(scope=result.scope).inc()
        return result

    def ping(self) -> bool:
        """Readiness: True in memory, or when Redis answers."""
        return self._storage.check()

    def _windows(self, team_id: str, user_id: str):
        ids = {"user": (team_id, user_id), "workspace": (team_id,)}
        for scope, items in self._scopes:
            for item in items:
                yield scope, item, ids[scope]

    def _check_redis(self, team_id: str, user_id: str) -> Allowed | RateLimited:
        windows = list(self._windows(team_id, user_id))
        storage = self._storage
        keys = [storage.prefixed_key(item.key_for(scope, *ids)) for scope, item, ids in windows]
        now = time.time()
        args: list[float | int] = [now]
        for _scope, item, _ids in windows:
            args += [item.amount, item.get_expiry()]
        full = self._hit_all(keys=keys, args=args)
        if not full:
            return Allowed()
        # When several are full, the user waits for the one that frees last.
        denials = []
        for position, entry in zip(full[::2], full[1::2], strict=True):
            scope, item, _ids = windows[int(position) - 1]
            denials.append(self._denied(scope, item, float(entry) + item.get_expiry() - now))
        return max(denials, key=lambda limited: limited.retry_after)

    def _check_memory(self, team_id: str, user_id: str) -> Allowed | RateLimited:
        windows = list(self._windows(team_id, user_id))
        # Test every window before taking any slot: a user over their own limit never uses up
        # the workspace's slots, and a full workspace never uses up a user's. The lock makes
        # the test and the hits one step.
        full = [
            self._denied(
                scope,
                item,
                self._strategy.get_window_stats(item, scope, *ids).reset_time - time.time(),
            )
            for scope, item, ids in windows
            if not self._strategy.test(item, scope, *ids)
        ]
        if full:
            return max(full, key=lambda limited: limited.retry_after)
        for scope, item, ids in windows:
            self._strategy.hit(item, scope, *ids)
        return Allowed()

    @staticmethod
    def _denied(scope: Scope, item: RateLimitItem, wait: float) -> RateLimited:
        # The window can move between the denial and the clock read; keep the wait within it.
        retry_after = min(max(wait, 0.001), float(item.get_expiry()))
        return RateLimited(scope=scope, retry_after=retry_after, limit=str(item))


class Deduplicator:
    """Remembers keys for a while, so the same submission or retried event is handled once.

    Keys are the caller's, e.g. `view:<view id>` or `event:<event id>`; they are stored under
    `coldcopy:dedup:`.
    """

    def __init__(self, client: redis.Redis | None = None, max_keys: int = MEMORY_DEDUP_MAX_KEYS):
        self._client = client
        self._max_keys = max_keys
        # In memory: key -> monotonic expiry, oldest insertion first, at most `max_keys` long.
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, client: redis.Redis | None = None) -> Deduplicator:
        if client is None and settings.redis_url:
            client = connect_redis(settings.redis_url)
        return cls(client)

    def first_time(self, key: str, ttl_seconds: int) -> bool:
        """True the first time `key` is seen within `ttl_seconds`; True as well if Redis fails."""
        if not isinstance(ttl_seconds, int) or ttl_seconds < 1:
            raise ValueError(f"ttl_seconds must be a whole number >= 1, got {ttl_seconds!r}")
        name = DEDUP_KEY_PREFIX + key
        if self._client is None:
            return self._first_time_in_memory(name, ttl_seconds)
        try:
            # One command sets the key and its expiry: no window where it could live forever.
            return bool(self._client.set(name, 1, nx=True, ex=ttl_seconds))
        except redis.RedisError as exc:
            _fail_open("dedup", exc)
            return True

    def ping(self) -> bool:
        """Readiness: True in memory, or when Redis answers."""
        return self._client is None or redis_reachable(self._client)

    def _first_time_in_memory(self, name: str, ttl_seconds: int) -> bool:
        now = time.monotonic()
        with self._lock:
            expires = self._seen.get(name)
            if expires is not None and expires > now:
                return False
            self._seen.pop(name, None)
            self._seen[name] = now + ttl_seconds
            # Drop expired keys from the old end, then the oldest beyond the bound.
            while self._seen:
                oldest, oldest_expires = next(iter(self._seen.items()))
                if oldest_expires > now and len(self._seen) <= self._max_keys:
                    break
                del self._seen[oldest]
            return True
