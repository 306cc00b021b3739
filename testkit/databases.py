"""Throwaway databases: a new PostgreSQL database dropped afterwards, and a Redis database
emptied before and after. What a missing server means is the caller's to say (a skipped or
failed test, a benchmark that stops)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@contextmanager
def new_postgres_database(admin_url: str, prefix: str = "coldcopy_test") -> Iterator[str]:
    """The URL of a new, empty database on the server of `admin_url`, dropped (its
    connections closed) afterwards. Raises the driver's error when the server is not usable."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:
        admin.dispose()
        raise
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def emptied_redis(url: str) -> Iterator[str]:
    """The Redis database at `url`, flushed before and after. Raises redis.RedisError when
    Redis does not answer."""
    client = redis.Redis.from_url(url, socket_timeout=5)
    try:
        client.ping()
        client.flushdb()
        yield url
    finally:
        with contextlib.suppress(redis.RedisError):  # it never answered, or went away
            client.flushdb()
        client.close()
