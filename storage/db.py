"""Engines and transactions: SQLite tuned for concurrent threads, PostgreSQL pooled, both with
timeouts so a database that stops answering fails a request instead of hanging it.

On SQLite every write transaction starts with BEGIN IMMEDIATE, so concurrent writers queue on
the busy timeout instead of failing with "database is locked" when a deferred reader upgrades.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy import Connection, Engine, create_engine, event, exc, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

# Slack waits 3 s for an answer: a connection or a statement that takes longer than these
# fails the request (with a "try again" message) instead of hanging its thread.
CONNECT_TIMEOUT_SECONDS = 2  # psycopg's smallest value
STATEMENT_TIMEOUT_MS = 1_500
# The server enforces statement_timeout only while it still answers; past this the client
# gives up on a silent server itself.
ANSWER_MARGIN_SECONDS = 0.5
POOL_TIMEOUT_SECONDS = 2.0
# SQLite's lock is only ever held by this process's own short transactions: a long wait means
# an overloaded process (many threads queueing for the GIL and the lock), not a lost server,
# so writers queue longer rather than fail a burst that is merely slow.
SQLITE_BUSY_TIMEOUT_MS = 10_000
# Operator commands (usage reports, key rotation) may scan whole tables.
OPERATOR_STATEMENT_TIMEOUT_MS = 120_000

# What a database that is down, silent, locked or out of connections raises.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    exc.OperationalError,
    exc.InterfaceError,
    exc.TimeoutError,
)
# Pooled connections are replaced this often, before servers and proxies drop idle ones.
POOL_RECYCLE_SECONDS = 300


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    statement_timeout_ms: int = STATEMENT_TIMEOUT_MS,
    pooled: bool = True,
) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and immediate write locks,
    PostgreSQL connect and statement timeouts. Statement parameters (briefs, tokens) never
    appear in an error message or a log line (`hide_parameters`). `pooled=False` opens a new
    connection each time: a health check then measures whether one can be opened now."""
    parsed = make_url(url)
    pool: dict = (
        {"pool_size": pool_size, "pool_timeout": POOL_TIMEOUT_SECONDS}
        if pooled
        else {"poolclass": NullPool}
    )
    if parsed.get_backend_name() == "sqlite":
        if pooled:
            pool["max_overflow"] = pool_size
            # Connections wait on the write lock while checked out: wait for one as long.
            pool["pool_timeout"] = SQLITE_BUSY_TIMEOUT_MS / 1000
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            hide_parameters=True,
            **pool,
        )
        _tune_sqlite(engine)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        # Plain postgresql:// means the installed psycopg 3 driver, not psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    connect_args: dict = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "options": f"-c statement_timeout={statement_timeout_ms}",
        }
    if pooled:
        # No pre-ping: on a silent server it would wait out a full answer deadline before
        # the statement's own. A connection the server dropped fails one statement, and
        # SQLAlchemy then discards the whole pool.
        pool["max_overflow"] = pool_size // 2
        pool["pool_recycle"] = POOL_RECYCLE_SECONDS
    engine = create_engine(parsed, connect_args=connect_args, hide_parameters=True, **pool)
    if parsed.get_backend_name() == "postgresql":
        _answer_within(engine, statement_timeout_ms / 1000 + ANSWER_MARGIN_SECONDS)
    return engine


class AnsweringConnection(psycopg.Connection):
    """psycopg's connection with a client-side deadline on every round trip: a server that
    accepts connections but stops answering fails the statement (and this connection, which
    is closed) instead of holding the request's thread forever."""

    answer_timeout: float | None = None

    def wait(self, gen, interval: float = 0.1, timeout: float | None = None):
        try:
            return super().wait(
                gen, interval=interval, timeout=self.answer_timeout if timeout is None else timeout
            )
        except _WAIT_TIMEOUT:
            self.close()  # mid-statement: the connection cannot be used again
            raise psycopg.OperationalError(
                f"the database did not answer within {self.answer_timeout:g} s"
            ) from None


# psycopg raises its internal _WaitTimeout when a wait's timeout expires.
_WAIT_TIMEOUT = getattr(psycopg.errors, "_WaitTimeout", psycopg.errors.OperationalError)


def _answer_within(engine: Engine, seconds: float) -> None:
    @event.listens_for(engine, "do_connect")
    def _connect(_dialect, _record, cargs, cparams):
        connection = AnsweringConnection.connect(*cargs, **cparams)
        connection.answer_timeout = seconds
        return connection


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy's "begin" event, not pysqlite, decide how transactions start.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get("readonly"):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One write transaction: committed on success, rolled back on any exception."""
    with engine.begin() as conn:
        yield conn


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """Reads: on SQLite a read-only transaction (one snapshot, no write lock); on PostgreSQL
    each statement on its own (autocommit). PostgreSQL's READ COMMITTED takes a snapshot per
    statement anyway, so a transaction around reads would only add BEGIN and COMMIT: two
    round trips for every lookup on the request path."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            yield conn.execution_options(isolation_level="AUTOCOMMIT")
            return
        conn = conn.execution_options(readonly=True)
        with conn.begin():
            yield conn


def ping(engine: Engine) -> None:
    """Raise if the database cannot be reached."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
