"""CPU per call of each library call on a submission's path, measured one at a time in this
process (PostgreSQL and Redis as the benchmarks use them), beside a bare round trip to each
server: what a submission costs beyond Bolt itself, call by call. The reservation, the rate
limit and the job's defer all happen before the answer.

    python -m bench.request_cpu [--calls 2000]

CPU is this process's user + system time (time.process_time), not wall time, so it does not
depend on how busy the servers or the machine are; wall time is printed beside it.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack

import redis
from sqlalchemy import text

from bench.services import flushed_redis, fresh_postgres
from bot.core.settings import Settings
from bot.domain.limits import RateLimiter
from bot.runtime.queue import JobQueue
from storage.db import make_engine
from storage.ledger import reserve_generation
from storage.migrate import upgrade
from storage.quota import QuotaPolicy
from testkit.briefs import SAMPLE_BRIEF

CALLS = 2_000
WORKSPACES = 50


def per_call(calls: int, action: Callable[[int], object]) -> tuple[float, float]:
    """(CPU ms, wall ms) per call of action(i)."""
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(calls):
        action(i)
    return (
        1000 * (time.process_time() - cpu) / calls,
        1000 * (time.perf_counter() - wall) / calls,
    )


def measure(calls: int = CALLS, verbose: bool = True) -> dict[str, tuple[float, float]]:
    run = uuid.uuid4().hex[:6]
    results: dict[str, tuple[float, float]] = {}
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_postgres("coldcopy_bench_cpu"))
        redis_url = stack.enter_context(flushed_redis())
        engine = make_engine(database_url, pool_size=2)
        stack.callback(engine.dispose)
        upgrade(engine)
        policy = QuotaPolicy(free=10**9, pro=10**9)
        brief = {**SAMPLE_BRIEF, "tone": "friendly", "language": "English"}

        def reserve(i: int, key: str = "k") -> object:
            return reserve_generation(
                engine,
                policy,
                team_id=f"T{i % WORKSPACES}",
                user_id=f"U{i % 7}",
                channel_id="C1",
                idempotency_key=f"{key}{run}{i}",
                brief=brief,
                model="claude",
            )

        for i in range(WORKSPACES):  # the workspaces exist, as in steady state
            reserve(i, "warm")

        def select_one(_i: int) -> None:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))

        settings = Settings(
            _env_file=None,
            database_url=database_url,
            redis_url=redis_url,
            user_rate="100000/minute",
            workspace_rate="100000/minute",
        )
        limiter = RateLimiter.from_settings(settings)
        client = redis.Redis.from_url(redis_url)
        stack.callback(client.close)
        queue = JobQueue(settings, engine)

        def enqueue(i: int) -> None:
            queue.defer(f"{run}-{i}")

        steps: dict[str, Callable[[int], object]] = {
            "reserve_generation (SQLAlchemy + psycopg, one statement)": reserve,
            "  beside: SELECT 1 on a pooled connection": select_one,
            "RateLimiter.check (redis-py, one EVALSHA)": lambda i: limiter.check(
                f"T{i % WORKSPACES}", f"U{i % 7}"
            ),
            "job queue defer (Procrastinate, in the ack)": enqueue,
            "  beside: Redis PING": lambda _i: client.ping(),
        }
        for label, action in steps.items():
            per_call(min(calls, 200), action)  # warm: pools, scripts, prepared statements
            results[label] = per_call(calls, action)
            if verbose:
                cpu, wall = results[label]
                print(f"{label:<58} CPU {cpu:6.3f} ms   wall {wall:6.3f} ms", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=CALLS)
    args = parser.parse_args(argv)
    measure(args.calls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
