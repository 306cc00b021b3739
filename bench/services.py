"""The throwaway services a benchmark runs against: a fresh PostgreSQL database (created,
migrated, dropped), an emptied Redis database, and the percentile arithmetic they share."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
# The fakes and the signed-request harness live with the tests, imported as top-level modules.
for path in (ROOT, TESTS):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from storage.db import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402

POSTGRES_ADMIN_URL = os.environ.get(
    "COLDCOPY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
# Not the tests' Redis database (15) nor the limiter benchmark's (14): this one gets flushed.
REDIS_URL = os.environ.get("COLDCOPY_BENCH_FLUSH_REDIS_URL", "redis://127.0.0.1:6379/13")


@contextmanager
def fresh_postgres(prefix: str = "coldcopy_bench") -> Iterator[str]:
    """A new PostgreSQL database, migrated to the newest schema, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        raise SystemExit(f"PostgreSQL at {POSTGRES_ADMIN_URL} is not usable: {exc}") from exc
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url, pool_size=1)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def flushed_redis(url: str = REDIS_URL) -> Iterator[str]:
    """The bench Redis database, emptied before and after."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise SystemExit(f"Redis at {url} is not reachable: {exc}") from exc
    client.flushdb()
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile of `samples` (which need not be sorted)."""
    ordered = sorted(samples)
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil(n * pct / 100)
    return ordered[int(rank) - 1]
