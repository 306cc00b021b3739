"""Running generations: each is claimed with a lease, written and posted email by email, and
finished; a generation whose process died is taken over and resumed by another.

Two dispatchers share one interface: the embedded mode's in-process pool, and the PostgreSQL
job queue (Procrastinate) that `coldcopy worker` processes consume in the scale-out mode.
Either way the generation row is the source of truth: its status, its lease, and the emails
already posted (with their Slack message ts) all live in the database, so a crash loses no
email and posts none twice, and Redis is never on a generation's path.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Protocol

from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import InterfaceError, OperationalError

from bot.domain.submission import in_workspace_context
from bot.runtime.metrics import (
    FIRST_EMAIL_SECONDS,
    GENERATION_SECONDS,
    GENERATIONS,
    TAKEOVERS,
    count_slack_error,
    slack_error,
)
from bot.runtime.wiring import Runtime
from bot.slack.blocks import Progress
from bot.slack.home_tab import publish_home
from bot.slack.thread import SequenceThread
from bot.writing.brief import Brief
from bot.writing.prompt import SEQUENCE_LENGTH
from bot.writing.writer import BodyDelta, SequenceEmail, WriterError, WriterSummary
from storage.generations import (
    BeingAnnounced,
    Claimed,
    GenerationRow,
    ModelsBusy,
    claim_generation,
    end_announcement,
    expire_leases,
    hand_back,
    never_started,
    orphaned_generations,
    queue_position,
    record_brief,
    record_thread,
    renew_lease,
    running_owners,
    save_progress,
    take_announcements,
    touch_queued,
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
from storage.retention import erase_expired_briefs

log = logging.getLogger(__name__)

# After this many takeovers (each one a process that died while writing it) a generation
# is given up: something about it keeps killing its workers.
MAX_TAKEOVERS = 2
# A model that keeps answering 429 slows the queue down instead of failing users; past
# this age a generation that still cannot get the model fails (and gives its unit back).
MODEL_BUSY_PATIENCE = timedelta(minutes=2)
MODEL_BUSY_DELAY = 15.0
# How often a waiting generation asks again for a model slot (the global cap is reached).
SLOT_WAIT = 1.0
# How soon a worker asks again for a generation whose parent message another process is
# posting (one Slack call).
ANNOUNCEMENT_WAIT = 0.25
# A generation no worker has started after this long gets its parent message ("Queued: N
# ahead of you") from the announcer of a process that runs generations; one a worker starts
# sooner gets it from that worker, already saying "Writing".
ANNOUNCE_AFTER = timedelta(seconds=1)
ANNOUNCE_BATCH = 50
# With no worker at all, `serve`'s sweeper announces what waited this share of
# COLDCOPY_STUCK_AFTER, so users hear where they stand long before a failure notice.
STUCK_NOTICE_FRACTION = 6
# A queued generation untouched this long may have lost its job (its process died between
# accepting it and handing it on): it is handed on again.
REDISPATCH_AFTER = timedelta(seconds=20)

GENERIC_FAILURE = "Something went wrong on our side while writing this sequence."
TAKEOVER_FAILURE = (
    "ColdCopy's workers stopped several times while writing this sequence, so it was stopped."
)
NEVER_STARTED = "ColdCopy couldn't start writing this sequence in time: no worker was free."
NOT_COUNTED = " Nothing was counted against your quota."


def process_owner() -> str:
    """This process's name on the leases it holds: host, pid and a nonce (pids are reused)."""
    global _owner, _owner_pid
    if _owner_pid != os.getpid():  # a forked child is a new owner
        _owner_pid = os.getpid()
        _owner = f"{socket.gethostname()}:{_owner_pid}:{uuid.uuid4().hex[:8]}"
    return _owner


_owner = ""
_owner_pid = -1


class LeaseLost(Exception):
    """Another process took this generation over (or it was failed): stop posting."""


class HandedBack(Exception):
    """This process is stopping: the generation went back to the queue to be resumed."""


class TryLater(Exception):
    """The generation could not start or go on for now (the model's cap, the model asking us
    to slow down, its parent message being posted elsewhere); run it again after `delay`."""

    def __init__(self, delay: float):
        super().__init__(f"retry in {delay:.0f} s")
        self.delay = delay


# --- leases ---------------------------------------------------------------------------------


class LeaseKeeper:
    """Renews the leases of the generations this process runs, all in one thread, every third
    of the lease. A generation whose renewal fails has been taken over: it is marked lost and
    its loop stops before posting anything more."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self.owner = process_owner()
        self.seconds = rt.settings.lease_seconds
        self._held: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # Set when this process stops: each generation hands itself back at its next email.
        self.draining = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-keeper", daemon=True)
        self._thread.start()

    def hold(self, generation_id: str) -> threading.Event:
        lost = threading.Event()
        with self._lock:
            self._held[generation_id] = lost
        return lost

    def drop(self, generation_id: str) -> None:
        with self._lock:
            self._held.pop(generation_id, None)

    def held(self) -> list[str]:
        with self._lock:
            return list(self._held)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            for generation_id in self.held():
                try:
                    kept = renew_lease(
                        self.rt.engine, generation_id, owner=self.owner, lease_seconds=self.seconds
                    )
                except Exception as exc:  # the database is away: the lease may still run out
                    log.warning("could not renew a lease: %s", exc)
                    continue
                if not kept:
                    with self._lock:
                        lost = self._held.pop(generation_id, None)
                    if lost is not None:
                        lost.set()


# --- one generation -------------------------------------------------------------------------


def run_generation(rt: Runtime, keeper: LeaseKeeper, generation_id: str) -> None:
    """Claim, write and post one generation, or resume it where a dead process left it.

    Safe to call any number of times: only a queued generation or one whose lease expired can
    be claimed. Raises TryLater when it must wait (the model's global cap is reached, or the
    model asked us to slow down, or another process is posting its parent message); the caller
    runs it again after the delay."""
    claim = claim_generation(
        rt.engine,
        generation_id,
        owner=keeper.owner,
        lease_seconds=keeper.seconds,
        running_cap=rt.settings.model_concurrency,
    )
    if isinstance(claim, ModelsBusy):
        raise TryLater(SLOT_WAIT)
    if isinstance(claim, BeingAnnounced):
        raise TryLater(ANNOUNCEMENT_WAIT)
    if claim is None:
        log.info("generation not claimable", extra={"generation_id": generation_id})
        return
    gen = claim.generation
    context = {"generation_id": gen.id, "team_id": gen.team_id}
    if claim.resumed:
        TAKEOVERS.inc()
        log.warning("resuming a generation (takeover %d)", gen.takeovers, extra=context)
    lost = keeper.hold(gen.id)
    try:
        if gen.takeovers > MAX_TAKEOVERS:
            _fail(rt, gen, None, TAKEOVER_FAILURE, "too many takeovers", None)
            return
        _write(rt, keeper, claim, lost)
        publish_home(rt, gen.team_id, gen.user_id)  # never raises; the Home lists this sequence
    finally:
        keeper.drop(gen.id)


def _write(rt: Runtime, keeper: LeaseKeeper, claim: Claimed, lost: threading.Event) -> None:
    gen = claim.generation
    context = {"generation_id": gen.id, "team_id": gen.team_id}
    started = time.monotonic()
    log.info("generation started", extra=context)
    thread: SequenceThread | None = None
    summary: WriterSummary | None = None
    # Every email written so far, with the ts of its reply. While an email streams, a marker
    # holds its reply's ts (`stream_ts`) so a takeover can remove the partial reply; an email
    # being finished when its process died holds both its text and that ts, and a takeover
    # finishes it. One whose ts is None and has no stream was being posted: Slack had it (the
    # request went out before the answer could be recorded), so it is not posted again.
    progress: list[dict] = list(gen.sequence or [])
    try:
        # The brief is gone if the workspace uninstalled while this waited in the queue.
        brief_data = gen.brief or {}
        if gen.brief and not claim.resumed:
            # Written with the workspace's context as it stands now, and kept with it, so a
            # resumed run and later rewrites use the same.
            brief_data = in_workspace_context(rt.engine, gen.team_id, gen.brief)
            if not record_brief(rt.engine, gen.id, owner=keeper.owner, brief=brief_data):
                raise LeaseLost
        brief = Brief(**brief_data)
        thread = _thread_for(rt, gen)
        if gen.parent_ts is None:
            thread.open()
            record_thread(rt.engine, gen.id, thread.channel, thread.ts)
        if progress:
            progress = _settle(rt, keeper, gen, thread, progress, brief.language)
        thread.posted = marked = len(progress)
        thread.started(recovered=claim.resumed and bool(progress))
        written = [
            {k: v for k, v in email.items() if k not in ("ts", "stream_ts")} for email in progress
        ]
        for item in rt.writer.write_sequence(brief, written=written):
            if isinstance(item, WriterSummary):
                summary = item
                continue
            if lost.is_set():
                raise LeaseLost
            if isinstance(item, BodyDelta):
                thread.draft(item)
                streaming = thread.streaming_ts(item.step)
                if streaming and marked < item.step:  # once per email, when its reply exists
                    marker = {"step": item.step, "stream_ts": streaming}
                    _save(rt, keeper, gen.id, [*progress, marker])
                    marked = item.step
                continue
            if keeper.draining.is_set():
                hand_back(rt.engine, gen.id, owner=keeper.owner)
                raise HandedBack
            email = {**item.as_dict(), "ts": None, "stream_ts": thread.streaming_ts(item.step)}
            _save(rt, keeper, gen.id, [*progress, email])  # the intent, before the post
            email["ts"] = thread.add_email(item.step, item)
            del email["stream_ts"]
            progress.append(email)
            _save(rt, keeper, gen.id, progress)
            if len(progress) == 1:
                FIRST_EMAIL_SECONDS.observe(time.monotonic() - started)
        if len(progress) != SEQUENCE_LENGTH or summary is None:
            raise WriterError(
                "invalid_output", f"{len(progress)} emails before the stream ended", usage=summary
            )
        commit_generation(
            rt.engine,
            gen.id,
            Delivery(sequence=progress, model=summary.model, tokens=summary.tokens),
        )
        GENERATIONS.labels(status=GenerationStatus.SUCCEEDED).inc()
        GENERATION_SECONDS.observe(time.monotonic() - started)
        standing = quota_standing(rt.engine, rt.policy, gen.team_id)
        thread.finish(used=standing.used, limit=standing.limit)
        log.info("generation succeeded", extra=context)
    except LeaseLost:
        log.warning("lost the lease: another process took this generation over", extra=context)
        _abandon(thread)
    except (OperationalError, InterfaceError) as exc:
        # The database went away (a restart, a failover). Nothing can be recorded now, so
        # stop: the lease runs out and whoever claims it next resumes after the last email
        # recorded. Failing here would fail the user for a blip.
        log.warning("lost the database mid-generation (%s): it will be resumed", exc, extra=context)
    except HandedBack:
        log.info("stopping: handed back for resumption", extra=context)
        _abandon(thread)
    except WriterError as exc:
        if exc.kind == "rate_limited" and _model_can_wait(gen):
            # Our model rate limit, even after the SDK's retries: wait in the queue, with the
            # thread saying so, and resume from the emails already posted.
            _record_spent(rt, gen.id, exc.usage)
            if hand_back(rt.engine, gen.id, owner=keeper.owner, available_at=_later()):
                log.warning("the model asked us to slow down: back in the queue", extra=context)
                _abandon(thread)
                if thread is not None:
                    thread.waiting()
                raise TryLater(MODEL_BUSY_DELAY) from None
        log.warning("generation failed: %s", exc.kind, extra=context)
        _fail(rt, gen, thread, exc.user_message, exc.kind, exc.usage)
    except CommitRefused:
        # The unit was given back while we were still writing: the user has the emails and
        # was not billed; nothing more to do.
        log.error("generation finished after it was released", extra=context)
    except SlackApiError as exc:
        count_slack_error("chat.postMessage", exc)
        log.error("Slack refused the thread: %s", slack_error(exc), extra=context)
        _fail(rt, gen, thread, GENERIC_FAILURE, f"slack:{slack_error(exc)}", summary)
    except TryLater:
        raise
    except Exception:
        log.exception("generation crashed", extra=context)
        _fail(rt, gen, thread, GENERIC_FAILURE, "internal_error", summary)


def _settle(
    rt: Runtime,
    keeper: LeaseKeeper,
    gen: GenerationRow,
    thread: SequenceThread,
    progress: list[dict],
    language: str,
) -> list[dict]:
    """Taking over: finish the email the dead process was turning from its stream into the
    formatted reply, remove the reply it was still streaming, keep the rest."""
    settled: list[dict] = []
    for entry in progress:
        stream_ts = entry.get("stream_ts")
        if "body" not in entry:  # an email that was still being streamed
            if stream_ts:
                thread.discard_reply(stream_ts)
            continue
        if entry.get("ts") is None and stream_ts:
            email = SequenceEmail.from_dict(entry, language=language)
            entry = {**entry, "ts": thread.settle_reply(email, stream_ts)}
        settled.append({k: v for k, v in entry.items() if k != "stream_ts"})
    if settled != progress:
        _save(rt, keeper, gen.id, settled)
    return settled


def _abandon(thread: SequenceThread | None) -> None:
    """The email being streamed here will be written again by whoever resumes."""
    if thread is not None:
        with contextlib.suppress(Exception):
            thread.abandon()


def _save(rt: Runtime, keeper: LeaseKeeper, generation_id: str, emails: list[dict]) -> None:
    if not save_progress(rt.engine, generation_id, owner=keeper.owner, emails=emails):
        raise LeaseLost


def _later():
    from storage.models import utcnow

    return utcnow() + timedelta(seconds=MODEL_BUSY_DELAY)


def _model_can_wait(gen: GenerationRow) -> bool:
    from storage.models import utcnow

    return gen.created_at is not None and utcnow() - gen.created_at < MODEL_BUSY_PATIENCE


def _record_spent(rt: Runtime, generation_id: str, usage: WriterSummary | None) -> None:
    if usage is not None:
        record_usage(rt.engine, generation_id, Delivery([], usage.model, usage.tokens))


def _thread_for(rt: Runtime, gen: GenerationRow, *, posted: int = 0) -> SequenceThread:
    thread = SequenceThread(
        rt.slack_client(gen.team_id),
        generation_id=gen.id,
        brief=Brief(**gen.brief),
        user_id=gen.user_id,
        channel_id=gen.channel_id,
        team_id=gen.team_id,
    )
    if gen.parent_ts is not None:
        thread.attach(gen.posted_channel_id or gen.channel_id, gen.parent_ts, posted=posted)
    return thread


def _fail(
    rt: Runtime,
    gen: GenerationRow,
    thread: SequenceThread | None,
    user_message: str,
    reason: str,
    usage: WriterSummary | None,
) -> None:
    """Give the unit back first (the user must never pay for a failure), then tell them."""
    released = release_generation(rt.engine, gen.id, error=reason)
    _record_spent(rt, gen.id, usage)
    if released:
        GENERATIONS.labels(status=GenerationStatus.FAILED).inc()
    try:
        if thread is None:
            thread = _thread_for(rt, gen, posted=len(gen.sequence or []))
        thread.fail(user_message + NOT_COUNTED)
    except Exception as exc:  # the failure notice itself could not be posted
        log.error(
            "could not tell the user about a failure: %s",
            exc,
            extra={"generation_id": gen.id},
        )


def announce_waiting(rt: Runtime, owner: str, *, waited: timedelta = ANNOUNCE_AFTER) -> int:
    """Post the parent message of each generation that has waited `waited` for a worker,
    saying where it stands in the queue; the worker that claims it continues this thread.
    Returns how many were announced."""
    announced = 0
    for gen in take_announcements(
        rt.engine,
        owner=owner,
        waited=waited,
        lease_seconds=rt.settings.lease_seconds,
        limit=ANNOUNCE_BATCH,
    ):
        context = {"generation_id": gen.id, "team_id": gen.team_id}
        thread = _thread_for(rt, gen)
        try:
            thread.open(Progress(queued_ahead=queue_position(rt.engine, gen.id)))
        except Exception as exc:  # the worker opens the thread itself when it starts
            log.warning("could not announce a queued generation: %s", exc, extra=context)
            end_announcement(rt.engine, gen.id, owner=owner, posted=None)
            continue
        if end_announcement(rt.engine, gen.id, owner=owner, posted=(thread.channel, thread.ts)):
            announced += 1
        else:  # held past its lease: a worker has opened the thread since; no second parent
            thread.retract()
    return announced


# --- dispatchers ----------------------------------------------------------------------------


class Dispatcher(Protocol):
    """Hands accepted generations to whatever runs them."""

    def dispatch(self, generation_id: str) -> None:
        """Have the generation run soon; raises when it could not be handed on."""

    def waiting(self, generation_ids: list[str]) -> set[str]:
        """Those of `generation_ids` known to be waiting to run (not lost)."""

    def shutdown(self, grace: float) -> None:
        """Stop taking work; let running generations finish for up to `grace` seconds, then
        hand the rest back to the queue so another process resumes them."""


class InProcessPool:
    """The embedded mode: generations run on a thread pool in this process (they wait on the
    model, not the CPU, so one process holds many at once)."""

    def __init__(self, rt: Runtime, threads: int):
        self.rt = rt
        self.keeper = LeaseKeeper(rt)
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="generation")
        self._waiting: set[str] = set()
        self._timers: set[threading.Timer] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.announcer = Announcer(rt).start()

    def dispatch(self, generation_id: str) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("shutting down")
            if generation_id in self._waiting:
                return
            self._waiting.add(generation_id)
        self.pool.submit(self._run, generation_id)

    def _run(self, generation_id: str) -> None:
        retry: float | None = None
        try:
            run_generation(self.rt, self.keeper, generation_id)
        except TryLater as busy:
            retry = busy.delay
        except Exception:
            log.exception("generation job failed", extra={"generation_id": generation_id})
        finally:
            with self._lock:
                self._waiting.discard(generation_id)
        if retry is not None:
            self._later(generation_id, retry)

    def _later(self, generation_id: str, delay: float) -> None:
        def fire() -> None:
            with self._lock:
                self._timers.discard(timer)
            # Shutting down: the generation waits in the queue for the next start.
            with contextlib.suppress(RuntimeError):
                self.dispatch(generation_id)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        with self._lock:
            if self._closed:
                return
            self._timers.add(timer)
        timer.start()

    def waiting(self, generation_ids: list[str]) -> set[str]:
        with self._lock:
            return self._waiting.intersection(generation_ids)

    def shutdown(self, grace: float) -> None:
        with self._lock:
            self._closed = True
            for timer in self._timers:
                timer.cancel()
        self.announcer.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)
        drain(self.rt, self.keeper, grace)
        self.keeper.stop()


DRAIN_SECONDS = 5.0


def drain(rt: Runtime, keeper: LeaseKeeper, grace: float) -> list[str]:
    """Let running generations finish for `grace` seconds; then each hands itself back at
    its next email; what is still waiting on the model after that is handed back here.
    Returns the generations handed back (to be resumed by another process)."""
    deadline = time.monotonic() + grace
    while keeper.held() and time.monotonic() < deadline:
        time.sleep(0.1)
    handed = keeper.held()
    keeper.draining.set()
    deadline = time.monotonic() + DRAIN_SECONDS
    while keeper.held() and time.monotonic() < deadline:
        time.sleep(0.05)
    for generation_id in keeper.held():
        if hand_back(rt.engine, generation_id, owner=keeper.owner):
            log.info("handed back for resumption", extra={"generation_id": generation_id})
    return handed


class QueueDispatcher:
    """The scale-out mode: generations go to the PostgreSQL job queue (Procrastinate) that
    `coldcopy worker` processes run, many at once each."""

    def __init__(self, rt: Runtime):
        from bot.runtime.queue import open_queue

        self.rt = rt
        self.queue = open_queue(rt.settings, rt.engine)

    def dispatch(self, generation_id: str, delay: float = 0) -> None:
        self.queue.defer(generation_id, delay=delay)

    def waiting(self, generation_ids: list[str]) -> set[str]:
        return self.queue.waiting(generation_ids)

    def shutdown(self, grace: float) -> None:
        """Nothing to stop here: jobs already deferred wait in PostgreSQL for any worker."""


def start_dispatcher(rt: Runtime) -> Dispatcher:
    """The queue in the scale-out mode, else the in-process pool; built once at start-up."""
    if rt.settings.uses_job_queue:
        return QueueDispatcher(rt)
    return InProcessPool(rt, rt.settings.job_threads)


def hand_on(dispatcher: Dispatcher, generation_id: str) -> None:
    """After a submission was accepted: hand its generation to a worker. It cannot be lost
    here: the row is already written, and the sweeper hands on a queued generation whose job
    went missing."""
    try:
        dispatcher.dispatch(generation_id)
    except Exception as exc:
        log.error(
            "could not hand a generation to a worker yet: %s",
            exc,
            extra={"generation_id": generation_id},
        )


# --- takeovers ------------------------------------------------------------------------------


def resume_local_orphans(rt: Runtime, dispatcher: Dispatcher) -> int:
    """At start-up: the generations that processes of this host were running when they died
    are taken over now, not when their leases would have run out (a restarted `serve`
    resumes its own orphans at once)."""
    host = socket.gethostname()
    dead = []
    for owner in running_owners(rt.engine):
        name, _, rest = owner.partition(":")
        pid = rest.partition(":")[0]
        if name == host and pid.isdigit() and not _alive(int(pid)):
            dead.append(owner)
    expire_leases(rt.engine, dead)
    return sweep(rt, dispatcher, queued_for=timedelta(0))


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # an earlier process with our pid (containers reuse pid 1)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep(rt: Runtime, dispatcher: Dispatcher, *, queued_for: timedelta = REDISPATCH_AFTER) -> int:
    """Hand on the work no process is doing: generations whose lease expired (taken over and
    resumed by whoever claims them), queued ones whose job was lost, and tell the users whose
    request waited too long for any worker. Returns how many it handled."""
    handled = 0
    waited = timedelta(seconds=rt.settings.stuck_after)
    for gen in never_started(rt.engine, waited=waited):
        log.warning(
            "no worker started this generation in time",
            extra={"generation_id": gen.id, "team_id": gen.team_id},
        )
        _fail(rt, gen, None, NEVER_STARTED, "never started", None)
        handled += 1
    orphans = orphaned_generations(rt.engine, queued_for=queued_for)
    # One question to the queue for all of them: a deep backlog is not a query per row.
    waiting = dispatcher.waiting([g.id for g in orphans if g.status == GenerationStatus.QUEUED])
    for gen in orphans:
        context = {"generation_id": gen.id, "team_id": gen.team_id}
        if gen.status == GenerationStatus.QUEUED:
            if gen.id in waiting:
                continue
            touch_queued(rt.engine, gen.id)
        else:
            log.warning("lease expired: handing the generation on for takeover", extra=context)
        try:
            dispatcher.dispatch(gen.id)
            handled += 1
        except Exception:
            log.exception("could not hand a generation on", extra=context)
    return handled


class RetentionPass:
    """Deletes briefs and sequences older than COLDCOPY_RETENTION_DAYS, at most once per
    `every` seconds (the sweeper's thread calls it on each of its passes)."""

    def __init__(self, rt: Runtime, every: float = 3600.0):
        self.rt = rt
        self.every = every
        self._next = 0.0

    def run_if_due(self) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self.every
        try:
            cleared = erase_expired_briefs(self.rt.engine, self.rt.settings.retention_days)
        except Exception:
            log.exception("retention pass failed")
            return
        if cleared:
            log.info("deleted the briefs and sequences of %d expired generations", cleared)


class Periodic:
    """Runs `run_once` every `interval` seconds in a daemon thread until stopped; a failing
    pass is logged and the next one runs as usual."""

    name = "periodic"

    def __init__(self, interval: float):
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def run_once(self) -> None:
        raise NotImplementedError

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.run_once()
            except Exception as exc:
                log.warning("%s pass failed: %s", self.name, exc)


class Sweeper(Periodic):
    """Runs `sweep` every few seconds: a dead process's generations are taken over within one
    lease plus one interval. It also announces the generations no worker has started in a
    sixth of `COLDCOPY_STUCK_AFTER` (30 s by default): with every worker down, nobody else
    would tell their users where they stand before they are told it failed."""

    name = "sweeper"

    def __init__(self, rt: Runtime, dispatcher: Dispatcher, interval: float | None = None):
        super().__init__(interval or max(1.0, rt.settings.lease_seconds / 3))
        self.rt = rt
        self.dispatcher = dispatcher
        self.owner = process_owner()
        self._retention = RetentionPass(rt)

    def run_once(self) -> None:
        sweep(self.rt, self.dispatcher)
        waited = timedelta(seconds=self.rt.settings.stuck_after / STUCK_NOTICE_FRACTION)
        announce_waiting(self.rt, self.owner, waited=waited)
        self._retention.run_if_due()


class Announcer(Periodic):
    """In a process that runs generations: every second, the parent message of each that has
    waited `ANNOUNCE_AFTER` for a worker (every worker busy) says where it stands in the
    queue. A process that only accepts requests leaves that to the workers (its sweeper
    steps in only when none has started a generation for a long while): in the scale-out
    mode a submission costs `serve` no Slack call."""

    name = "announcer"

    def __init__(self, rt: Runtime, interval: float = 1.0):
        super().__init__(interval)
        self.rt = rt
        self.owner = process_owner()

    def run_once(self) -> None:
        announce_waiting(self.rt, self.owner)
