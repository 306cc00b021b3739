"""Writing one sequence: claim the generation with a lease, write it email by email into its
thread, and finish it; or resume it where a dead process left it.

The generation row is the source of truth: its status, its lease and the emails already posted
(with their Slack message ts) all live in the database, so a crash loses no email and posts none
twice. A run is a short sequence of phases; what each failure does is one table (`FAILURES`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from slack_sdk.errors import SlackApiError

from bot.core.dispatch import TryLater
from bot.core.metrics import (
    FIRST_EMAIL_SECONDS,
    GENERATION_SECONDS,
    GENERATIONS,
    TAKEOVERS,
    count_slack_error,
    slack_error,
)
from bot.domain.submission import in_workspace_context
from bot.flows.endings import GENERIC_FAILURE, fail_generation, record_spent, thread_for
from bot.flows.leases import HandedBack, LeaseKeeper, LeaseLost
from bot.flows.posting import EmailPoster
from bot.flows.resume import settle_takeover
from bot.slack.home_tab import publish_home
from bot.slack.services import Services
from bot.slack.thread import SequenceThread
from bot.writing.brief import Brief
from bot.writing.events import BodyDelta, WriterError, WriterStopped, WriterSummary
from bot.writing.prompt import SEQUENCE_LENGTH
from storage.db import UNAVAILABLE_ERRORS
from storage.erasure import was_erased
from storage.generations import (
    BeingAnnounced,
    Claimed,
    ModelsBusy,
    claim_generation,
    hand_back,
    record_brief,
    record_thread,
    save_progress,
)
from storage.ledger import CommitRefused, Delivery, commit_generation
from storage.models import GenerationStatus
from storage.quota import quota_standing

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

TAKEOVER_FAILURE = (
    "ColdCopy's workers stopped several times while writing this sequence, so it was stopped."
)


def run_generation(services: Services, keeper: LeaseKeeper, generation_id: str) -> None:
    """Claim, write and post one generation, or resume it where a dead process left it.

    Safe to call any number of times: only a queued generation or one whose lease expired can
    be claimed. Raises TryLater when it must wait (the model's global cap is reached, or the
    model asked us to slow down, or another process is posting its parent message); the caller
    runs it again after the delay."""
    claim = claim_generation(
        services.engine,
        generation_id,
        owner=keeper.owner,
        lease_seconds=keeper.seconds,
        running_cap=services.settings.model_concurrency,
        now=keeper.clock.now(),
    )
    if isinstance(claim, ModelsBusy):
        raise TryLater(SLOT_WAIT)
    if isinstance(claim, BeingAnnounced):
        raise TryLater(ANNOUNCEMENT_WAIT)
    if claim is None:
        log.info("generation not claimable", extra={"generation_id": generation_id})
        return
    gen = claim.generation
    if claim.resumed:
        TAKEOVERS.inc()
        log.warning(
            "resuming a generation (takeover %d)",
            gen.takeovers,
            extra={"generation_id": gen.id, "team_id": gen.team_id},
        )
    lost = keeper.hold(gen.id)
    try:
        if gen.takeovers > MAX_TAKEOVERS:
            fail_generation(services, gen, None, TAKEOVER_FAILURE, "too many takeovers", None)
            return
        run = GenerationRun(services, keeper, claim, lost)
        try:
            run.write()
        except Exception as exc:
            run.failed(exc)
        # Never raises; the Home tab lists this sequence now.
        publish_home(services, gen.team_id, gen.user_id, enterprise_id=gen.enterprise_id)
    finally:
        keeper.drop(gen.id)


class GenerationRun:
    """One process's attempt at one claimed generation."""

    def __init__(
        self, services: Services, keeper: LeaseKeeper, claim: Claimed, lost: threading.Event
    ):
        self.services = services
        self.keeper = keeper
        self.claim = claim
        self.gen = claim.generation
        self.lost = lost
        self.context = {"generation_id": self.gen.id, "team_id": self.gen.team_id}
        self.started = time.monotonic()
        self.thread: SequenceThread | None = None
        self.summary: WriterSummary | None = None
        # Every email written so far, with the ts of its reply (bot/flows/resume.py).
        self.progress: list[dict] = list(self.gen.sequence or [])
        self._posting: dict | None = None  # the email being posted, recorded before the post
        self._recording = threading.Lock()  # the writer's thread and the poster's both record
        self._poster: EmailPoster | None = None

    def write(self) -> None:
        log.info("generation started", extra=self.context)
        brief = self._brief()
        self._open_thread(brief)
        self._resume(brief.language)
        self._stream(brief)
        self._finish()

    # -- the phases ---------------------------------------------------------------------------

    def _brief(self) -> Brief:
        """The brief as the model gets it: with the workspace's context as it stands when the
        writing starts, kept with the generation so a resumed run and later rewrites use the
        same. (It is gone if the workspace uninstalled while this waited in the queue.)"""
        brief = self.gen.brief or {}
        if self.gen.brief and not self.claim.resumed:
            brief = in_workspace_context(self.services.engine, self.gen.team_id, self.gen.brief)
            if not record_brief(
                self.services.engine, self.gen.id, owner=self.keeper.owner, brief=brief
            ):
                raise LeaseLost
        return Brief(**brief)

    def _open_thread(self, brief: Brief) -> None:
        self.thread = thread_for(self.services, self.gen)
        if self.gen.parent_ts is None:
            self.thread.open()
            record_thread(self.services.engine, self.gen.id, self.thread.channel, self.thread.ts)

    def _resume(self, language: str) -> None:
        """After a takeover, put right what the dead process left in the thread."""
        if self.progress:
            settled = settle_takeover(self.thread, self.progress, language)
            if settled != self.progress:
                self._save(settled)
            self.progress = settled
        self.thread.posted = len(self.progress)
        self.thread.started(recovered=self.claim.resumed and bool(self.progress))

    def _stream(self, brief: Brief) -> None:
        """Each email shown in the thread's draft as the model writes it, then posted as its
        own reply by the poster, in order; recorded before and after each post, so a takeover
        neither loses nor repeats one (bot/flows/resume.py)."""
        written = [
            {k: v for k, v in email.items() if k not in ("ts", "stream_ts")}
            for email in self.progress
        ]
        self._poster = EmailPoster(self._post_email, name=f"poster-{self.gen.id[:8]}")
        drafting = opening_checked = False
        for item in self.services.writer.write_sequence(brief, written=written, stop=self.lost):
            if isinstance(item, WriterSummary):
                self.summary = item
                continue
            if self.lost.is_set():
                raise LeaseLost
            self._poster.check()
            if isinstance(item, BodyDelta):
                if not opening_checked:
                    # The draft is a new reply: only while the lease is still ours (a stopped
                    # or erased run posts nothing new, its token may be gone).
                    self._record()
                    opening_checked = True
                self.thread.draft(item)
                if not drafting and self.thread.draft_ts():  # once, when the draft exists
                    self._record()
                    drafting = True
                continue
            if self.keeper.draining.is_set():
                self._poster.stop()
                hand_back(self.services.engine, self.gen.id, owner=self.keeper.owner)
                raise HandedBack
            self._poster.hand(item.step, item)
        self._poster.finish()

    def _post_email(self, step: int, email) -> None:
        """On the poster's thread: the intent recorded, the post, then its ts recorded."""
        entry = {**email.as_dict(), "ts": None}
        with self._recording:
            self._posting = entry
        self._record()
        entry["ts"] = self.thread.add_email(step, email)
        with self._recording:
            self.progress.append(entry)
            self._posting = None
        self._record()
        if len(self.progress) == 1:
            FIRST_EMAIL_SECONDS.observe(time.monotonic() - self.started)

    def _finish(self) -> None:
        if len(self.progress) != SEQUENCE_LENGTH or self.summary is None:
            raise WriterError(
                "invalid_output",
                f"{len(self.progress)} emails before the stream ended",
                usage=self.summary,
            )
        self.thread.close_draft()
        commit_generation(
            self.services.engine,
            self.gen.id,
            Delivery(sequence=self.progress, model=self.summary.model, tokens=self.summary.tokens),
        )
        GENERATIONS.labels(status=GenerationStatus.SUCCEEDED).inc()
        GENERATION_SECONDS.observe(time.monotonic() - self.started)
        standing = quota_standing(self.services.engine, self.services.policy, self.gen.team_id)
        self.thread.finish(used=standing.used, limit=standing.limit)
        log.info("generation succeeded", extra=self.context)

    def _record(self) -> None:
        """Save the emails posted, the one being posted, and the draft's ts while there is one
        (a takeover removes it). Either thread may call it; the lock keeps each save whole."""
        with self._recording:
            rows = [*self.progress, *([self._posting] if self._posting else [])]
            draft = self.thread.draft_ts()
            self._save([*rows, {"stream_ts": draft}] if draft else rows)

    def _save(self, emails: list[dict]) -> None:
        if not save_progress(
            self.services.engine, self.gen.id, owner=self.keeper.owner, emails=emails
        ):
            raise LeaseLost

    # -- when it goes wrong -------------------------------------------------------------------

    def failed(self, exc: Exception) -> None:
        """Do what `FAILURES` says for `exc` (the first entry whose type matches). Emails the
        model finished are posted first when the model failed; otherwise nothing more is."""
        if self._poster is not None:
            if isinstance(exc, WriterError):
                with contextlib.suppress(Exception):
                    self._poster.finish(timeout=60)
            else:
                self._poster.stop()
        for failure in FAILURES:
            if isinstance(exc, failure.caught):
                failure.act(self, exc)
                return
        raise exc  # never reached: the table ends with Exception

    def abandon(self) -> None:
        """The email being streamed here will be written again by whoever resumes."""
        if self.thread is not None:
            with contextlib.suppress(Exception):
                self.thread.abandon()

    def fail(self, user_message: str, reason: str, usage: WriterSummary | None) -> None:
        fail_generation(self.services, self.gen, self.thread, user_message, reason, usage)


def _taken_over(run: GenerationRun, exc: Exception) -> None:
    log.warning("lost the lease: another process took this generation over", extra=run.context)
    run.abandon()


def _database_away(run: GenerationRun, exc: Exception) -> None:
    # Nothing can be recorded now, so stop: the lease runs out and whoever claims it next
    # resumes after the last email recorded. Failing here would fail the user for a blip.
    log.warning("lost the database mid-generation (%s): it will be resumed", exc, extra=run.context)


def _handed_back(run: GenerationRun, exc: Exception) -> None:
    log.info("stopping: handed back for resumption", extra=run.context)
    run.abandon()


def _model_failed(run: GenerationRun, exc: WriterError) -> None:
    waited = run.keeper.clock.now() - run.gen.created_at if run.gen.created_at else None
    if exc.kind == "rate_limited" and waited is not None and waited < MODEL_BUSY_PATIENCE:
        # Our model rate limit, even after the SDK's retries: wait in the queue, with the
        # thread saying so, and resume from the emails already posted.
        record_spent(run.services, run.gen.id, exc.usage)
        later = run.keeper.clock.now() + timedelta(seconds=MODEL_BUSY_DELAY)
        if hand_back(run.services.engine, run.gen.id, owner=run.keeper.owner, available_at=later):
            log.warning("the model asked us to slow down: back in the queue", extra=run.context)
            run.abandon()
            if run.thread is not None:
                run.thread.waiting()
            raise TryLater(MODEL_BUSY_DELAY) from None
    log.warning("generation failed: %s", exc.kind, extra=run.context)
    run.fail(exc.user_message, exc.kind, exc.usage)


def _released_meanwhile(run: GenerationRun, exc: Exception) -> None:
    # Erased meanwhile (nothing was written back, nothing more is posted), or the user has the
    # emails and was not billed; nothing more to do.
    if was_erased(run.services.engine, run.gen.id):
        log.info("generation stopped: its workspace was erased", extra=run.context)
        run.abandon()
        return
    log.error("generation finished after it was released", extra=run.context)


def _slack_refused(run: GenerationRun, exc: SlackApiError) -> None:
    count_slack_error("chat.postMessage", exc)
    log.error("Slack refused the thread: %s", slack_error(exc), extra=run.context)
    run.fail(GENERIC_FAILURE, f"slack:{slack_error(exc)}", run.summary)


def _wait(run: GenerationRun, exc: TryLater) -> None:
    raise exc


def _crashed(run: GenerationRun, exc: Exception) -> None:
    log.error("generation crashed", exc_info=exc, extra=run.context)
    run.fail(GENERIC_FAILURE, "internal_error", run.summary)


@dataclass(frozen=True)
class Failure:
    caught: type[BaseException] | tuple[type[BaseException], ...]
    does: str  # what happens, in words: the table reads as the rules
    act: Callable


FAILURES: tuple[Failure, ...] = (
    Failure(
        (LeaseLost, WriterStopped),
        "stop; the process that took it over writes the rest (or it was erased)",
        _taken_over,
    ),
    Failure(
        UNAVAILABLE_ERRORS,
        "the database is away or its pool is exhausted: stop; whoever claims it when its lease "
        "runs out resumes it",
        _database_away,
    ),
    Failure(HandedBack, "stop; another process resumes it", _handed_back),
    Failure(
        WriterError,
        "the model asked us to slow down: back in the queue, resumed later (for 2 minutes); "
        "any other model failure: fail with Try again and give the unit back",
        _model_failed,
    ),
    Failure(CommitRefused, "nothing: its unit was already given back", _released_meanwhile),
    Failure(SlackApiError, "fail with Try again and give the unit back", _slack_refused),
    Failure(TryLater, "run it again after the delay", _wait),
    Failure(Exception, "a bug: fail with Try again and give the unit back", _crashed),
)
