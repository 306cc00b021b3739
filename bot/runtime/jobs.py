"""Running generations: the job itself, the dispatchers that hand it to a worker (an
in-process pool, or RQ on Redis), and the sweeper that recovers work a crash left behind.

An accepted request is never silently lost: the job claims its row atomically, succeeds
(quota becomes usage) or fails (quota given back, user told with a Try again button), and a
generation stuck after a crash is re-queued or failed by the sweeper.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import redis
from slack_sdk.errors import SlackApiError

from bot.runtime.metrics import (
    FIRST_EMAIL_SECONDS,
    GENERATION_SECONDS,
    GENERATIONS,
    count_slack_error,
    slack_error,
)
from bot.runtime.wiring import Runtime
from bot.slack.thread import SequenceThread
from bot.writing.brief import Brief
from bot.writing.prompt import SEQUENCE_LENGTH
from bot.writing.writer import WriterError, WriterSummary
from storage.generations import (
    claim_generation,
    mark_redispatched,
    record_thread,
    stuck_generations,
    touch_generation,
)
from storage.ledger import (
    CommitRefused,
    Delivery,
    commit_generation,
    quota_standing,
    record_usage,
    release_generation,
)
from storage.models import GenerationStatus

log = logging.getLogger(__name__)

QUEUE_NAME = "coldcopy"
GENERIC_FAILURE = "Something went wrong on our side while writing this sequence."
CRASH_FAILURE = "ColdCopy restarted while writing this sequence."
NEVER_STARTED = "ColdCopy couldn't start writing this sequence: no worker picked it up."
NOT_COUNTED = " Nothing was counted against your quota."


def _delivery(emails: list, summary: WriterSummary) -> Delivery:
    return Delivery(
        sequence=[email.as_dict() for email in emails], model=summary.model, tokens=summary.tokens
    )


def run_generation(rt: Runtime, generation_id: str) -> None:
    """Write and post one generation. Safe to call twice: only one call claims the row."""
    gen = claim_generation(rt.engine, generation_id)
    if gen is None:
        log.info("generation already claimed", extra={"generation_id": generation_id})
        return
    started = time.monotonic()
    context = {"generation_id": gen.id, "team_id": gen.team_id}
    log.info("generation started", extra=context)
    thread: SequenceThread | None = None
    emails: list = []
    summary: WriterSummary | None = None
    try:
        # The brief is gone if the workspace uninstalled while this waited in the queue.
        brief = Brief(**(gen.brief or {}))
        client = rt.slack_client(gen.team_id)
        thread = SequenceThread(
            client,
            generation_id=gen.id,
            brief=brief,
            user_id=gen.user_id,
            channel_id=gen.channel_id,
        )
        thread.open()
        record_thread(rt.engine, gen.id, thread.channel, thread.ts)
        for item in rt.writer.write_sequence(brief):
            if isinstance(item, WriterSummary):
                summary = item
                continue
            emails.append(item)
            thread.add_email(len(emails), item)
            if len(emails) == 1:
                FIRST_EMAIL_SECONDS.observe(time.monotonic() - started)
            touch_generation(rt.engine, gen.id)
        if len(emails) != SEQUENCE_LENGTH or summary is None:
            raise WriterError(
                "invalid_output", f"{len(emails)} emails before the stream ended", usage=summary
            )
        commit_generation(rt.engine, gen.id, _delivery(emails, summary))
        GENERATIONS.labels(status=GenerationStatus.SUCCEEDED).inc()
        GENERATION_SECONDS.observe(time.monotonic() - started)
        standing = quota_standing(rt.engine, rt.policy, gen.team_id)
        thread.finish(used=standing.used, limit=standing.limit)
        log.info("generation succeeded", extra=context)
    except WriterError as exc:
        log.warning("generation failed: %s", exc.kind, extra=context)
        _fail(rt, gen.id, thread, exc.user_message, exc.kind, exc.usage)
    except CommitRefused:
        # The sweeper gave this unit back while we were still writing: the user has the
        # emails and was not billed; nothing more to do.
        log.error("generation finished after it was released", extra=context)
    except SlackApiError as exc:
        count_slack_error("chat.postMessage", exc)
        log.error("Slack refused the thread: %s", slack_error(exc), extra=context)
        _fail(rt, gen.id, thread, GENERIC_FAILURE, f"slack:{slack_error(exc)}", summary)
    except Exception:
        log.exception("generation crashed", extra=context)
        _fail(rt, gen.id, thread, GENERIC_FAILURE, "internal_error", summary)


def _fail(
    rt: Runtime,
    generation_id: str,
    thread: SequenceThread | None,
    user_message: str,
    reason: str,
    usage: WriterSummary | None,
) -> None:
    """Give the unit back first (the user must never pay for a failure), then tell them."""
    released = release_generation(rt.engine, generation_id, error=reason)
    if usage is not None:
        record_usage(rt.engine, generation_id, _delivery([], usage))
    if released:
        GENERATIONS.labels(status=GenerationStatus.FAILED).inc()
    if thread is None:
        return
    try:
        thread.fail(user_message + NOT_COUNTED)
    except Exception as exc:  # the failure notice itself could not be posted
        log.error(
            "could not tell the user about a failure: %s",
            exc,
            extra={"generation_id": generation_id},
        )


# --- dispatchers --------------------------------------------------------------------------


class InProcessDispatcher:
    """The embedded mode's worker pool: a bounded number of threads in this process."""

    def __init__(self, rt: Runtime, threads: int):
        self.rt = rt
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="generation")
        self._pending: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, generation_id: str) -> None:
        with self._lock:
            self._pending.add(generation_id)
        self.pool.submit(self._run, generation_id)

    def _run(self, generation_id: str) -> None:
        try:
            run_generation(self.rt, generation_id)
        finally:
            with self._lock:
                self._pending.discard(generation_id)

    def is_pending(self, generation_id: str) -> bool:
        """Still waiting in (or running from) this process's pool: a backlog, not a loss."""
        with self._lock:
            return generation_id in self._pending

    def shutdown(self, wait: bool = True) -> None:
        self.pool.shutdown(wait=wait, cancel_futures=False)


class RQDispatcher:
    """The scale-out mode: generations go to an RQ queue consumed by `coldcopy worker`."""

    def __init__(self, rt: Runtime):
        from rq import Queue

        # Its own connection: the limiter's 100 ms timeouts suit fail-open checks, not a
        # queue write that must not be lost. Two seconds still answers Slack in time.
        connection = redis.Redis.from_url(
            rt.settings.redis_url, socket_connect_timeout=1, socket_timeout=2
        )
        self.queue = Queue(QUEUE_NAME, connection=connection)
        self.timeout = int(rt.settings.model_timeout) + 120

    def __call__(self, generation_id: str) -> None:
        # The job id is the generation id: RQ then keeps one job per generation.
        self.queue.enqueue(
            "bot.runtime.jobs.perform_generation",
            generation_id,
            job_id=self.job_id(generation_id),
            job_timeout=self.timeout,
            result_ttl=0,
            failure_ttl=7 * 24 * 3600,
        )

    @staticmethod
    def job_id(generation_id: str) -> str:
        return f"generation-{generation_id}"

    def is_pending(self, generation_id: str) -> bool:
        """Waiting in the queue or being run: a backlog, not a loss. When Redis cannot say,
        assume pending: a sick Redis must not fail users' requests."""
        from rq.exceptions import NoSuchJobError
        from rq.job import Job, JobStatus

        try:
            job = Job.fetch(self.job_id(generation_id), connection=self.queue.connection)
            status = job.get_status(refresh=False)
        except NoSuchJobError:
            return False
        except redis.RedisError:
            return True
        return status in (
            JobStatus.QUEUED,
            JobStatus.STARTED,
            JobStatus.DEFERRED,
            JobStatus.SCHEDULED,
        )

    def shutdown(self, wait: bool = True) -> None:
        return None


def start_dispatcher(rt: Runtime, *, use_queue: bool | None = None):
    """RQ when Redis is configured (unless told otherwise), else the in-process pool."""
    if use_queue is None:
        use_queue = rt.redis is not None
    dispatcher = RQDispatcher(rt) if use_queue else InProcessDispatcher(rt, rt.settings.job_threads)
    rt.dispatch = dispatcher
    return dispatcher


# --- the sweeper ------------------------------------------------------------------------------


def sweep(rt: Runtime) -> int:
    """Recover generations a crash left behind; returns how many it handled.

    A queued one still waiting in the queue is a backlog and is left alone. One that is
    in no queue (its process died, or the queue lost it) is dispatched once more; if that
    is lost too, or it was running when its worker died (maybe with emails posted), it is
    failed: the unit goes back and the user is told."""
    handled = 0
    is_pending = getattr(rt.dispatch, "is_pending", lambda _id: False)
    for gen in stuck_generations(rt.engine, timedelta(seconds=rt.settings.stuck_after)):
        context = {"generation_id": gen.id, "team_id": gen.team_id}
        if gen.status == GenerationStatus.QUEUED and is_pending(gen.id):
            continue
        if gen.status == GenerationStatus.QUEUED and mark_redispatched(rt.engine, gen.id):
            log.warning("re-dispatching a generation that never started", extra=context)
            try:
                rt.dispatch(gen.id)
            except Exception:
                log.exception("could not re-dispatch", extra=context)
            handled += 1
            continue
        if not release_generation(rt.engine, gen.id, error=f"stuck {gen.status}: no worker"):
            continue
        GENERATIONS.labels(status=GenerationStatus.FAILED).inc()
        handled += 1
        log.warning("failed a stuck generation and gave its quota back", extra=context)
        _notify_stuck(rt, gen)
    return handled


def _notify_stuck(rt: Runtime, gen) -> None:
    try:
        client = rt.slack_client(gen.team_id)
        thread = SequenceThread(
            client,
            generation_id=gen.id,
            brief=Brief(**gen.brief),
            user_id=gen.user_id,
            channel_id=gen.channel_id,
        )
        thread.channel, thread.ts = gen.posted_channel_id, gen.parent_ts
        reason = CRASH_FAILURE if gen.status == GenerationStatus.RUNNING else NEVER_STARTED
        thread.fail(reason + NOT_COUNTED)
    except Exception as exc:
        log.error(
            "could not tell the user about a stuck generation: %s",
            exc,
            extra={"generation_id": gen.id},
        )


class Sweeper:
    """Runs `sweep` every `interval` seconds in a daemon thread until stopped."""

    def __init__(self, rt: Runtime, interval: float | None = None):
        self.rt = rt
        self.interval = interval or min(30.0, rt.settings.stuck_after / 2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sweeper", daemon=True)

    def start(self) -> Sweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                sweep(self.rt)
            except Exception:
                log.exception("sweeper pass failed")


# --- the RQ worker ---------------------------------------------------------------------------

_worker_runtime: Runtime | None = None


def perform_generation(generation_id: str) -> None:
    """RQ's entry point, inside `coldcopy worker`."""
    if _worker_runtime is None:
        raise RuntimeError("perform_generation runs inside `coldcopy worker`")
    run_generation(_worker_runtime, generation_id)


def run_worker(settings) -> int:
    from prometheus_client import start_http_server
    from rq import SimpleWorker

    from bot.runtime.logs import configure_logging
    from bot.runtime.metrics import REGISTRY
    from bot.runtime.wiring import build_runtime
    from storage.db import make_engine
    from storage.migrate import pending

    global _worker_runtime
    configure_logging(settings.log_level)
    # A worker runs one generation at a time: a small pool is plenty.
    engine = make_engine(settings.database_url, pool_size=2)
    if pending(engine):
        log.error("the database has pending migrations: run `coldcopy migrate` first")
        return 1
    rt = build_runtime(settings, engine=engine)
    start_dispatcher(rt)
    _worker_runtime = rt
    # Workers serve no HTTP of their own, so their metrics get a port of their own.
    if settings.worker_metrics_port:
        try:
            start_http_server(settings.worker_metrics_port, registry=REGISTRY)
        except OSError as exc:
            log.error("no /metrics for this worker: port %d: %s", settings.worker_metrics_port, exc)
    sweeper = Sweeper(rt).start()
    # SimpleWorker runs jobs in this process, sharing its engine pool; scale out with more
    # worker processes. A worker killed mid-job leaves a running row the sweeper recovers.
    # Its connection has no read timeout: the worker blocks on the queue between jobs.
    connection = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5)
    worker = SimpleWorker([QUEUE_NAME], connection=connection)
    try:
        worker.work(with_scheduler=False)
    finally:
        sweeper.stop()
        rt.close()
    return 0
