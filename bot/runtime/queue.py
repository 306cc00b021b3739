"""The scale-out mode's job queue: Procrastinate on the same PostgreSQL database as the
generations, so a job is as durable as the quota it protects and Redis is never on its path.

`QueueDispatcher` is how `coldcopy serve` (and a worker putting a generation back for later)
hands generations on; `coldcopy worker` (bot/runtime/worker.py) runs them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import procrastinate
from procrastinate import SyncPsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from bot.core.settings import Settings

log = logging.getLogger(__name__)

QUEUE = "generations"
TASK = "coldcopy.run_generation"
# A draft campaign in a sending tool (bot/flows/sending.py), on the same queue and workers.
DRAFT_TASK = "coldcopy.create_draft"
CONNECT_TIMEOUT_SECONDS = 5


def conninfo(database_url: str) -> str:
    """A libpq connection string from our SQLAlchemy URL (which names its driver)."""
    url = make_url(database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def lock_of(generation_id: str) -> str:
    # One waiting job per generation: handing it on twice while it waits is a no-op.
    return f"generation:{generation_id}"


def queue_app(
    connector, perform: Callable | None = None, perform_draft: Callable | None = None
) -> procrastinate.App:
    """The Procrastinate app with the generation and draft tasks. Only a worker passes
    `perform` and `perform_draft` (the jobs themselves, given Procrastinate's job context); a
    process that only defers never runs them."""
    app = procrastinate.App(connector=connector)
    app.task(name=TASK, queue=QUEUE, pass_context=True)(perform or _not_here)
    app.task(name=DRAFT_TASK, queue=QUEUE, pass_context=True)(perform_draft or _no_draft_here)
    return app


def _not_here(context, generation_id: str) -> None:
    raise RuntimeError("generation jobs run inside `coldcopy worker`")


def _no_draft_here(context, draft_id: str) -> None:
    raise RuntimeError("draft jobs run inside `coldcopy worker`")


class JobQueue:
    """Defers generation jobs from a synchronous process (`coldcopy serve`, and a worker that
    puts a generation back for later).

    A defer runs on one of the process's own pooled connections (`engine`), in autocommit,
    through Procrastinate's `connection=` option: one round trip, where its own pool would
    add BEGIN and COMMIT and a second pool for request threads to queue on (and more
    connections to count against PostgreSQL's limit)."""

    def __init__(self, settings: Settings, engine: Engine):
        self.engine = engine
        # Never opened: every query here brings its own connection, so the connector's pool
        # would only hold idle connections.
        self.app = queue_app(SyncPsycopgConnector(conninfo=conninfo(settings.database_url)))

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

    def defer_draft(self, draft_id: str) -> None:
        """A draft job for any worker; one waiting job per draft (a second click is a no-op)."""
        job = self.app.configure_task(DRAFT_TASK, queueing_lock=f"draft:{draft_id}").make_new_job(
            draft_id=draft_id
        )
        with self._connection() as connection, contextlib.suppress(AlreadyEnqueued):
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


class QueueDispatcher:
    """The scale-out mode's Dispatcher: generations go to the job queue that `coldcopy worker`
    processes run, many at once each."""

    def __init__(self, settings: Settings, engine: Engine):
        self.queue = JobQueue(settings, engine)

    def dispatch(self, generation_id: str, delay: float = 0) -> None:
        self.queue.defer(generation_id, delay=delay)

    def waiting(self, generation_ids: list[str]) -> set[str]:
        return self.queue.waiting(generation_ids)

    def shutdown(self, grace: float) -> None:
        """Nothing to stop here: jobs already deferred wait in PostgreSQL for any worker."""
