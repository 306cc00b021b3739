"""The scale-out mode's job queue: Procrastinate on the same PostgreSQL database as the
generations, so a job is as durable as the quota it protects and Redis is never on its path.

`open_queue` is what `coldcopy serve` uses to hand generations on; `run_worker` is
`coldcopy worker`: one process running many generations at once (they wait on the model, not
the CPU), which on SIGTERM lets them finish for a while, then hands the rest back so another
worker resumes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from bot.runtime.config import Settings

log = logging.getLogger(__name__)

QUEUE = "generations"
TASK = "coldcopy.run_generation"
CONNECT_TIMEOUT_SECONDS = 5


def conninfo(database_url: str) -> str:
    """A libpq connection string from our SQLAlchemy URL (which names its driver)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def lock_of(generation_id: str) -> str:
    # One waiting job per generation: handing it on twice while it waits is a no-op.
    return f"generation:{generation_id}"


def _app(connector) -> procrastinate.App:
    app = procrastinate.App(connector=connector)
    app.task(name=TASK, queue=QUEUE, pass_context=False)(_perform)
    return app


class JobQueue:
    """Defers generation jobs from a synchronous process (`coldcopy serve`, and a worker that
    puts a generation back for later).

    A defer runs on one of the process's own pooled connections (`engine`), in autocommit,
    through Procrastinate's `connection=` option: one round trip, where its own pool would
    add BEGIN and COMMIT and a second pool for request threads to queue on (and more
    connections to count against PostgreSQL's limit)."""

    def __init__(self, settings: Settings, engine: Engine):
        from procrastinate import SyncPsycopgConnector

        self.engine = engine
        # Never opened: every query here brings its own connection, so the connector's pool
        # would only hold idle connections.
        self.app = _app(SyncPsycopgConnector(conninfo=conninfo(settings.database_url)))

    @contextlib.contextmanager
    def _connection(self):
        with self.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn.connection.driver_connection

    def defer(self, generation_id: str, *, delay: float = 0) -> None:
        options: dict = {"queueing_lock": lock_of(generation_id)}
        if delay:
            options["schedule_in"] = {"seconds": delay}
        job = self.app.configure_task(TASK, **options).make_new_job(generation_id=generation_id)
        with self._connection() as connection, contextlib.suppress(AlreadyEnqueued):
            # AlreadyEnqueued: its job is already waiting for a worker. The job manager
            # itself, not the task's deferrer, which renders the job for two log lines (one
            # of them debug) on every call.
            self.app.job_manager.defer_job(job, connection=connection)

    def waiting(self, generation_ids: list[str]) -> set[str]:
        """Those of `generation_ids` whose job waits for a worker: one query for them all."""
        if not generation_ids:
            return set()
        with self._connection() as connection:
            rows = self.app.connector.execute_query_all_with_connection(
                connection,
                "SELECT queueing_lock FROM procrastinate_jobs "
                "WHERE queueing_lock = ANY(%(locks)s) AND status = 'todo'",
                locks=[lock_of(g) for g in generation_ids],
            )
        prefix = len(lock_of(""))
        return {row["queueing_lock"][prefix:] for row in rows}


def open_queue(settings: Settings, engine: Engine) -> JobQueue:
    return JobQueue(settings, engine)


# --- the worker -------------------------------------------------------------------------------

_worker = None  # (Runtime, LeaseKeeper, JobQueue) inside `coldcopy worker`


def _perform(generation_id: str) -> None:
    """The job: run (or resume) one generation; if it must wait, defer it again for later."""
    from bot.runtime.jobs import TryLater, run_generation

    if _worker is None:
        raise RuntimeError("generation jobs run inside `coldcopy worker`")
    rt, keeper, queue = _worker
    try:
        run_generation(rt, keeper, generation_id)
    except TryLater as busy:
        queue.defer(generation_id, delay=busy.delay)


def run_worker(settings: Settings, concurrency: int | None = None) -> int:
    """`coldcopy worker`: run generation jobs until SIGTERM or SIGINT."""
    from prometheus_client import start_http_server

    from bot.runtime.jobs import Announcer, LeaseKeeper, QueueDispatcher, Sweeper, drain
    from bot.runtime.logs import configure_logging
    from bot.runtime.metrics import REGISTRY
    from bot.runtime.wiring import build_runtime
    from storage.db import make_engine
    from storage.migrate import pending

    global _worker
    configure_logging(settings.log_level)
    concurrency = concurrency or settings.worker_concurrency
    # A generation holds a connection only for one short statement at a time (its claim, a
    # lease renewal, a progress save), so a small pool serves many at once.
    engine = make_engine(settings.database_url, pool_size=8)
    if pending(engine):
        log.error("the database has pending migrations: run `coldcopy migrate` first")
        return 1
    rt = build_runtime(settings, engine=engine)
    dispatcher = QueueDispatcher(rt)
    keeper = LeaseKeeper(rt)
    _worker = (rt, keeper, dispatcher.queue)
    # Workers serve no HTTP of their own, so their metrics get a port of their own.
    if settings.worker_metrics_port:
        try:
            start_http_server(settings.worker_metrics_port, registry=REGISTRY)
        except OSError as exc:
            log.error("no /metrics for this worker: port %d: %s", settings.worker_metrics_port, exc)
    sweeper = Sweeper(rt, dispatcher).start()
    # Every slot busy: the generations waiting for one still get their thread, with their
    # place in the queue.
    announcer = Announcer(rt).start()
    app = _app(
        procrastinate.PsycopgConnector(
            conninfo=conninfo(settings.database_url),
            min_size=1,
            max_size=4,
            kwargs={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        )
    )
    log.info("coldcopy worker running up to %d generations at once", concurrency)
    try:
        asyncio.run(_work(app, concurrency, settings.shutdown_grace))
    finally:
        announcer.stop()
        sweeper.stop()
        # Procrastinate already gave running jobs the grace period: whatever is still being
        # written goes back to the queue now, for another worker to resume.
        for generation_id in drain(rt, keeper, grace=0):
            with contextlib.suppress(Exception):
                dispatcher.dispatch(generation_id)
        keeper.stop()
        dispatcher.shutdown(grace=0)
        rt.close()
    log.info("coldcopy worker stopped")
    # Threads still waiting on the model would hold the exit until their streams time out;
    # their generations are already back in the queue.
    logging.shutdown()
    os._exit(0)


async def _work(app: procrastinate.App, concurrency: int, grace: float) -> None:
    loop = asyncio.get_running_loop()
    # Sync jobs run on the loop's default executor: size it for the concurrency asked for
    # (Python's default is a handful of threads).
    loop.set_default_executor(
        ThreadPoolExecutor(max_workers=concurrency + 2, thread_name_prefix="generation")
    )
    async with app.open_async():
        # Procrastinate's own SIGTERM/SIGINT handling: stop fetching, let running jobs go on
        # for `grace` seconds; the caller then hands back whatever is still running.
        await app.run_worker_async(
            queues=[QUEUE],
            concurrency=concurrency,
            install_signal_handlers=True,
            shutdown_graceful_timeout=grace,
            delete_jobs="successful",
            listen_notify=True,
            fetch_job_polling_interval=2.0,
        )


def queue_depth(engine) -> dict[str, int]:
    """Jobs by status, for the runbook's `coldcopy usage`-style inspection."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT status, count(*) FROM procrastinate_jobs GROUP BY status")
        ).all()
    return {status: n for status, n in rows}
