"""`coldcopy worker`: runs generation jobs from the PostgreSQL queue, many at once (they wait on
the model, not the CPU). On SIGTERM it lets them finish for COLDCOPY_SHUTDOWN_GRACE seconds, then
hands the rest back so another worker resumes them, and returns its exit status.

What a job needs (the services, the lease keeper, the dispatcher) reaches it through
Procrastinate's job context (`additional_context`), not a module global.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import procrastinate
from procrastinate.job_context import JobContext
from prometheus_client import start_http_server

from bot.core.dispatch import TryLater
from bot.core.logs import configure_logging
from bot.core.metrics import REGISTRY
from bot.core.settings import Settings, StartupError
from bot.flows.jobs import run_job
from bot.flows.leases import LeaseKeeper
from bot.flows.pool import drain
from bot.flows.sending import run_draft
from bot.flows.sweeper import Announcer, Sweeper
from bot.runtime.queue import QUEUE, QueueDispatcher, conninfo, queue_app
from bot.runtime.serving import check_token_keys
from bot.runtime.wiring import build_services
from bot.slack.services import Services
from storage.db import make_engine
from storage.migrate import pending

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 5
# Where the worker's state sits in Procrastinate's job context.
STATE = "coldcopy"


@dataclass(frozen=True)
class WorkerState:
    services: Services
    keeper: LeaseKeeper
    dispatcher: QueueDispatcher


def perform(context: JobContext, generation_id: str) -> None:
    """The job: run (or resume) one generation; if it must wait, defer it again for later."""
    state: WorkerState = context.additional_context[STATE]
    try:
        run_job(state.services, state.keeper, generation_id)
    except TryLater as busy:
        state.dispatcher.dispatch(generation_id, delay=busy.delay)


def perform_draft(context: JobContext, draft_id: str) -> None:
    """The job: create (or finish) one claimed draft in its sending tool."""
    state: WorkerState = context.additional_context[STATE]
    run_draft(state.services, draft_id)


def run_worker(settings: Settings, concurrency: int | None = None) -> int:
    """Run generation jobs until SIGTERM or SIGINT; the exit status."""
    configure_logging(settings.log_level)
    concurrency = concurrency or settings.worker_concurrency
    # A generation holds a connection only for one short statement at a time (its claim, a
    # lease renewal, a progress save), so a small pool serves many at once.
    engine = make_engine(settings.database_url, pool_size=8)
    if pending(engine):
        engine.dispose()
        raise StartupError("the database has pending migrations: run `coldcopy migrate` first")
    try:
        check_token_keys(settings, engine)
    except StartupError:
        engine.dispose()
        raise
    services = build_services(settings, engine=engine)
    state = WorkerState(
        services,
        LeaseKeeper(engine, settings.lease_seconds).start(),
        QueueDispatcher(settings, engine),
    )
    # Workers serve no HTTP of their own, so their metrics get a port of their own.
    if settings.worker_metrics_port:
        try:
            start_http_server(settings.worker_metrics_port, registry=REGISTRY)
        except OSError as exc:
            log.error("no /metrics for this worker: port %d: %s", settings.worker_metrics_port, exc)
    sweeper = Sweeper(services, state.dispatcher).start()
    # Every slot busy: the generations waiting for one still get their thread, with their
    # place in the queue.
    announcer = Announcer(services).start()
    app = queue_app(
        procrastinate.PsycopgConnector(
            conninfo=conninfo(settings.database_url),
            min_size=1,
            max_size=4,
            kwargs={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        ),
        perform,
        perform_draft,
    )
    log.info("coldcopy worker running up to %d generations at once", concurrency)
    try:
        asyncio.run(_work(app, concurrency, settings.shutdown_grace, state))
    finally:
        announcer.stop()
        sweeper.stop()
        state.keeper.stop()
        services.close()
    log.info("coldcopy worker stopped")
    return 0


async def _work(app: procrastinate.App, concurrency: int, grace: float, state: WorkerState):
    loop = asyncio.get_running_loop()
    # Sync jobs run on the loop's default executor: size it for the concurrency asked for
    # (Python's default is a handful of threads).
    loop.set_default_executor(
        ThreadPoolExecutor(max_workers=concurrency + 2, thread_name_prefix="generation")
    )
    try:
        async with app.open_async():
            # Procrastinate's own SIGTERM/SIGINT handling: stop fetching, let running jobs go
            # on for `grace` seconds.
            await app.run_worker_async(
                queues=[QUEUE],
                concurrency=concurrency,
                install_signal_handlers=True,
                shutdown_graceful_timeout=grace,
                delete_jobs="successful",
                listen_notify=True,
                fetch_job_polling_interval=2.0,
                additional_context={STATE: state},
            )
    finally:
        # Before the loop waits for its executor: whatever is still being written goes back
        # to the queue for another worker to resume, and its thread stops at once.
        for generation_id in drain(state.services, state.keeper, grace=0):
            with contextlib.suppress(Exception):
                state.dispatcher.dispatch(generation_id)
        state.keeper.stop_all()
