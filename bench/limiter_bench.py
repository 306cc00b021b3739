"""Benchmark of `bot.domain.limits`: rate-limit check latency on local Redis and in memory,
and what a check costs when it fails open against a dead or silent Redis.

Run: `.venv/bin/python -m bench.limiter_bench` (Redis at COLDCOPY_BENCH_REDIS_URL, default
redis://127.0.0.1:6379/14). `measure()` returns the figures for a runner that gathers them.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
import uuid
from collections.abc import Callable

import redis

from bot.core.settings import Settings
from bot.domain.limits import Allowed, Deduplicator, RateLimiter
from testkit.fakes.tcp_proxy import silent_server
from testkit.processes import free_port

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
TARGET_P99_MS = 2.0
TARGET_FAIL_OPEN_MS = 250.0

USERS_PER_TEAM = 10
CHECKS_PER_USER = 2  # the default user rate: every check of the allowed pass is allowed


def _settings(redis_url: str | None) -> Settings:
    # Only the limiter's settings matter here; nothing is read from the environment or .env.
    return Settings(
        _env_file=None, redis_url=redis_url, user_rate="2/minute", workspace_rate="30/hour"
    )


def _timed_ms(action: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter_ns()
    result = action()
    return (time.perf_counter_ns() - started) / 1e6, result


def _percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _latency(limiter: RateLimiter, checks: int, run: str, prefix: str) -> dict[str, float]:
    """`checks` allowed checks, then one more per user (each refused), timed one by one."""
    users = [
        (f"T{run}-{t}", f"U{u}")
        for t in range(max(1, checks // (USERS_PER_TEAM * CHECKS_PER_USER)))
        for u in range(USERS_PER_TEAM)
    ]
    for team, user in users[:50]:  # warm up: connections, Lua scripts loaded
        limiter.check(team + "warm", user)
    allowed: list[float] = []
    for _ in range(CHECKS_PER_USER):
        for team, user in users:
            elapsed, result = _timed_ms(lambda team=team, user=user: limiter.check(team, user))
            assert result == Allowed(), result
            allowed.append(elapsed)
    denied: list[float] = []
    for team, user in users:
        elapsed, result = _timed_ms(lambda team=team, user=user: limiter.check(team, user))
        assert result != Allowed(), result
        denied.append(elapsed)
    return {
        f"{prefix}_allowed_checks": len(allowed),
        f"{prefix}_allowed_p50_ms": statistics.median(allowed),
        f"{prefix}_allowed_p99_ms": _percentile(allowed, 99),
        f"{prefix}_denied_checks": len(denied),
        f"{prefix}_denied_p50_ms": statistics.median(denied),
        f"{prefix}_denied_p99_ms": _percentile(denied, 99),
    }


def _dedup_latency(dedup: Deduplicator, checks: int, run: str) -> dict[str, float]:
    samples = [
        _timed_ms(lambda i=i: dedup.first_time(f"bench:{run}:{i}", 60))[0] for i in range(checks)
    ]
    return {
        "redis_dedup_p50_ms": statistics.median(samples),
        "redis_dedup_p99_ms": _percentile(samples, 99),
    }


def _fail_open_cost(redis_url: str, checks: int, prefix: str) -> dict[str, float]:
    limiter = RateLimiter.from_settings(_settings(redis_url))
    dedup = Deduplicator.from_settings(_settings(redis_url))
    check_ms: list[float] = []
    dedup_ms: list[float] = []
    for i in range(checks):
        elapsed, result = _timed_ms(lambda: limiter.check("T-dead", "U-dead"))
        assert result == Allowed(failed_open=True), result
        check_ms.append(elapsed)
        elapsed, first = _timed_ms(lambda i=i: dedup.first_time(f"dead:{i}", 60))
        assert first is True
        dedup_ms.append(elapsed)
    return {
        f"{prefix}_checks": len(check_ms),
        f"{prefix}_check_p50_ms": statistics.median(check_ms),
        f"{prefix}_check_max_ms": max(check_ms),
        f"{prefix}_dedup_max_ms": max(dedup_ms),
    }


def measure(
    redis_url: str | None = None, checks: int = 5_000, dead_checks: int = 20
) -> dict[str, float]:
    """The benchmark's figures, in milliseconds unless the name says otherwise."""
    redis_url = redis_url or os.environ.get("COLDCOPY_BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    run = uuid.uuid4().hex[:8]
    figures: dict[str, float] = {}

    limiter = RateLimiter.from_settings(_settings(redis_url))
    if not limiter.ping():
        raise SystemExit(f"Redis at {redis_url} is not reachable; start it first")
    figures |= _latency(limiter, checks, run, "redis")
    figures |= _dedup_latency(Deduplicator.from_settings(_settings(redis_url)), checks, run)
    figures |= _latency(RateLimiter.from_settings(_settings(None)), checks, run, "memory")

    # Fail-open checks log one warning each by design; the figures are what matters here.
    logging.getLogger("bot.domain.limits").setLevel(logging.ERROR)
    refused_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: a dead Redis
    figures |= _fail_open_cost(refused_url, dead_checks, "refused")
    with silent_server() as port:  # accepts connections, never answers: a hung Redis
        figures |= _fail_open_cost(f"redis://127.0.0.1:{port}/0", dead_checks, "silent")

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"coldcopy:*{run}*", count=1000):
        client.delete(key)
    client.close()
    return figures


def main() -> None:
    figures = measure()
    for name, value in figures.items():
        shown = f"{value:.0f}" if name.endswith("_checks") else f"{value:.3f}"
        print(f"{name:<28} {shown:>10}")
    p99 = figures["redis_allowed_p99_ms"]
    worst = max(
        figures[f"{dead}_{what}_max_ms"]
        for dead in ("refused", "silent")
        for what in ("check", "dedup")
    )
    print(
        f"target: p99 on Redis < {TARGET_P99_MS} ms: {'met' if p99 < TARGET_P99_MS else 'MISSED'}"
    )
    print(
        f"target: fail-open check < {TARGET_FAIL_OPEN_MS:.0f} ms worst case: "
        f"{'met' if worst < TARGET_FAIL_OPEN_MS else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
