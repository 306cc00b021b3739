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

from bot.brief import Brief
from bot.metrics import FIRST_EMAIL_SECONDS, GENERATION_SECONDS, GENERATIONS
from bot.runtime import Runtime
from bot.thread import SequenceThread, count_error, slack_error
from bot.writer import WriterError, WriterSummary
from storage.generations import (
    claim_generation,
    record_thread,
    requeue_generation,
    stuck_generations,
    touch_generation,
)
from storage.models import GenerationStatus
from storage.quota import (
    CommitRefused,
    Delivery,
    commit_generation,
    record_usage,
    release_generation,
    workspace_usage,
)

log = logging.getLogger(__name__)

SEQUENCE_LENGTH = 7
QUEUE_NAME = "coldcopy"
# A generation that was queued but never started is dispatched again at most this often.
MAX_ATTEMPTS = 2
GENERIC_FAILURE = "Something went wrong on our side while writing this sequence."
CRASH_FAILURE = "ColdCopy restarted while writing this sequence."
NOT_COUNTED = " Nothing was counted against your quota."


def _delivery(emails: list, summary: WriterSummary | None, model: str) -> Delivery:
    usage = summary
    return Delivery(
        sequence=[email.as_dict() for email in emails],
        model=getattr(usage, "model", model),
        input_tokens=getattr(usage, "input_tokens", 0),
        output_tokens=getattr(usage, "output_tokens", 0),
        cache_creation_tokens=getattr(usage, "cache_creation_tokens", 0),
        cache_read_tokens=getattr(usage, "cache_read_tokens", 0),
        cost_usd=getattr(usage, "cost_usd", Delivery.cost_usd),
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
    brief = Brief(**gen.brief)
    thread: SequenceThread | None = None
    emails: list = []
    summary: WriterSummary | None = None
    try:
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
        commit_generation(rt.engine, gen.id, _delivery(emails, summary, rt.settings.model))
        GENERATIONS.labels(status=GenerationStatus.SUCCEEDED).inc()
        GENERATION_SECONDS.observe(time.monotonic() - started)
        usage = workspace_usage(rt.engine, rt.policy, gen.team_id, top=0)
        thread.finish(used=usage.used, limit=usage.limit)
        log.info("generation succeeded", extra=context)
    except WriterError as exc:
        log.warning("generation failed: %s", exc.kind, extra=context)
        _fail(rt, gen.id, thread, exc.user_message, exc.kind, exc.usage)
    except CommitRefused:
        # The sweeper gave this unit back while we were still writing: the user has the
        # emails and was not billed; nothing more to do.
        log.error("generation finished after it was released", extra=context)
    except SlackApiError as exc:
        count_error("chat.postMessage", exc)
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
        record_usage(rt.engine, generation_id, _delivery([], usage, rt.settings.model))
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

    def __call__(self, generation_id: str) -> None:
        self.pool.submit(run_generation, self.rt, generation_id)

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
            "bot.jobs.perform_generation",
            generation_id,
            job_id=f"generation-{generation_id}",
            job_timeout=self.timeout,
            result_ttl=0,
            failure_ttl=7 * 24 * 3600,
        )

    def shutdown(self, wait: bool = True) -> None:
        return None


def start_dispatcher(rt: Runtime, *, use_queue: bool | None = None):
    """RQ when Redis is configured (unless told otherwise), else the in-process pool."""
    if use_queue is None:
        use_queue = rt.redis is not None
    if use_queue:
        dispatcher = RQDispatcher(rt)
    else:
        dispatcher = InProcessDispatcher(rt, rt.settings.job_threads)
    rt.dispatch = dispatcher
    return dispatcher


# --- the sweeper ------------------------------------------------------------------------------


def sweep(rt: Runtime) -> int:
    """Recover generations a crash left behind; returns how many it handled.

    Queued ones never started: dispatch them again (once more at most). Running ones died
    mid-stream, maybe with emails posted: fail them, give the unit back and tell the user."""
    handled = 0
    for gen in stuck_generations(rt.engine, timedelta(seconds=rt.settings.stuck_after)):
        context = {"generation_id": gen.id, "team_id": gen.team_id}
        if gen.status == GenerationStatus.QUEUED and gen.attempts < MAX_ATTEMPTS:
            if requeue_generation(rt.engine, gen.id, max_attempts=MAX_ATTEMPTS):
                log.warning("re-dispatching a generation that never started", extra=context)
                rt.dispatch(gen.id)
                handled += 1
            continue
        if not release_generation(rt.engine, gen.id, error="stuck: worker stopped"):
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
        thread.fail(CRASH_FAILURE + NOT_COUNTED)
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
    from rq import SimpleWorker

    from bot.logs import configure_logging
    from bot.runtime import build_runtime

    global _worker_runtime
    configure_logging(settings.log_level)
    rt = build_runtime(settings)
    start_dispatcher(rt)
    _worker_runtime = rt
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
