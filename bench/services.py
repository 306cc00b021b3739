"""The throwaway services a benchmark runs against: a fresh PostgreSQL database (created,
migrated, dropped), an emptied Redis database, and the percentile arithmetic they share. A
missing server stops the benchmark with a message."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import redis

from storage.db import make_engine
from storage.migrate import upgrade
from testkit.databases import emptied_redis, new_postgres_database

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN_URL = os.environ.get(
    "COLDCOPY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# Not the tests' Redis database (15) nor the limiter benchmark's (14): this one gets flushed.
REDIS_URL = os.environ.get("COLDCOPY_BENCH_FLUSH_REDIS_URL", "redis://127.0.0.1:6379/13")


@contextmanager
def empty_postgres(prefix: str = "coldcopy_bench") -> Iterator[str]:
    """A new, unmigrated PostgreSQL database, dropped afterwards."""
    with ExitStack() as stack:
        try:
            url = stack.enter_context(new_postgres_database(POSTGRES_ADMIN_URL, prefix))
        except Exception as exc:  # any driver error means the server is not usable
            raise SystemExit(f"PostgreSQL at {POSTGRES_ADMIN_URL} is not usable: {exc}") from exc
        yield url


@contextmanager
def fresh_postgres(prefix: str = "coldcopy_bench") -> Iterator[str]:
    """A new PostgreSQL database, migrated to the newest schema, dropped afterwards."""
    with empty_postgres(prefix) as url:
        engine = make_engine(url, pool_size=1)
        upgrade(engine)
        engine.dispose()
        yield url


@contextmanager
def flushed_redis(url: str = REDIS_URL) -> Iterator[str]:
    """The bench Redis database, emptied before and after."""
    with ExitStack() as stack:
        try:
            stack.enter_context(emptied_redis(url))
        except redis.RedisError as exc:
            raise SystemExit(f"Redis at {url} is not reachable: {exc}") from exc
        yield url


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile of `samples` (which need not be sorted)."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil(n * pct / 100)
    return ordered[int(rank) - 1]
