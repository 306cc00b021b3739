"""Shared fixtures: real databases (SQLite and PostgreSQL), real Redis, and settings.

Under CI (`CI=true`) a test that needs PostgreSQL or Redis fails when the service is missing;
on a developer machine it is skipped with a message saying how to start the service. Each test
is marked `postgres` and/or `redis` by the fixtures it asks for, so `-m "not postgres and not
redis"` runs without either; tests/unit/ holds the fast layer, which needs neither.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from helpers import make_settings, service_missing
from sqlalchemy import Engine, create_engine, text

from storage.db import make_engine
from storage.migrate import upgrade
from storage.quota import QuotaPolicy
from testkit.databases import emptied_redis, new_postgres_database

UNIT = Path(__file__).parent / "unit"
# The fixtures that reach each service; a fixture that picks one at run time (`database_url`)
# marks that parameter itself.
NEEDS = {"postgres": {"postgres_admin_url"}, "redis": {"redis_url"}}

POSTGRES_URL = os.environ.get(
    "COLDCOPY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _redis_url_of_this_worker(url: str) -> str:
    """The test Redis database, one per pytest-xdist worker (gw0 the given database, gw1 the
    one below it, ...), since every test flushes its database before and after."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    parts = urlsplit(url)
    database = int(parts.path.lstrip("/") or 0)
    mine = (database - int(worker.removeprefix("gw"))) % 16
    return urlunsplit(parts._replace(path=f"/{mine}"))


REDIS_URL = _redis_url_of_this_worker(
    os.environ.get("COLDCOPY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
)


def pytest_collection_modifyitems(config, items) -> None:
    """Mark each test by the services it needs; a unit test that needs one, or a served app,
    stops the run before anything starts."""
    for item in items:
        for marker, fixtures in NEEDS.items():
            if fixtures & set(item.fixturenames):
                item.add_marker(marker)
        needs = [m.name for m in item.iter_markers() if m.name in NEEDS]
        if "make_app" in item.fixturenames:
            needs.append("a served app")
        if needs and UNIT in item.path.parents:
            raise pytest.UsageError(
                f"{item.nodeid} needs {' and '.join(needs)}: the unit layer runs without "
                "services, so it belongs in tests/, not tests/unit/"
            )


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    try:
        engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # any driver error means the server is not usable
        service_missing(f"PostgreSQL at {POSTGRES_URL}", exc)
    return POSTGRES_URL


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test, dropped afterwards."""
    with new_postgres_database(postgres_admin_url) as url:
        yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'coldcopy.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request) -> str:
    """Each test that uses it runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database on both backends."""
    engine = make_engine(database_url, pool_size=20)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url: str) -> Iterator[Engine]:
    engine = make_engine(sqlite_url, pool_size=20)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The test Redis database, emptied before and after each test."""
    try:
        with emptied_redis(REDIS_URL) as url:
            yield url
    except redis.RedisError as exc:  # only entering raises it: the test's own errors stay its own
        service_missing(f"Redis at {REDIS_URL}", exc)


@pytest.fixture
def policy() -> QuotaPolicy:
    return QuotaPolicy(free=3, pro=200)


# --- the end-to-end world: ColdCopy served over HTTP against the Slack and Claude fakes ----------


# The fakes and the harness are imported by the fixtures that use them: importing the harness
# imports the whole app, which the unit layer mostly does without.


@pytest.fixture
def slack():
    from testkit.fakes.slack import FakeSlack

    with FakeSlack() as fake:
        fake.add_user("UADMIN", is_admin=True)
        fake.add_user("U1")
        fake.add_user("U2")
        yield fake


@pytest.fixture
def claude():
    from testkit.fakes.anthropic import FakeAnthropic

    with FakeAnthropic() as fake:
        fake.default_reply = None
        yield fake


@pytest.fixture
def make_app(slack, claude, sqlite_engine):
    """Start ColdCopy against the fakes; settings overrides per test."""
    from testkit.harness import ServedApp

    started: list = []

    def start(engine=None, **overrides):
        settings = make_settings(
            slack_api_url=slack.base_url,
            anthropic_base_url=claude.base_url,
            database_url=str((engine or sqlite_engine).url),
            **overrides,
        )
        app = ServedApp(settings, engine or sqlite_engine, slack=slack)
        started.append(app.__enter__())
        return app

    yield start
    for app in started:
        app.__exit__(None, None, None)
