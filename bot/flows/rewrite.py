"""Rewriting one email of a sequence in its thread: admit it, stream the new version into a
temporary reply while the model writes it, then update the email's own reply in place (marked
as edited, notes recomputed) and remove the temporary one. A failed rewrite leaves the email as
it was and tells the user so."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.metrics import count_slack_error
from bot.domain.limits import RateLimited
from bot.domain.rewrites import RewriteRequest, Rewrites, quick_change
from bot.slack.block_kit import escape_markdown
from bot.slack.blocks import email_message, rewrite_heading
from bot.slack.live_reply import LiveReply, post_reply, update_message
from bot.slack.services import Services
from bot.slack.wording import not_yours
from bot.writing.brief import Brief
from bot.writing.events import (
    MISCONFIGURED_MESSAGE,
    BodyDelta,
    SequenceEmail,
    WriterError,
    WriterSummary,
)
from storage.access import Act, NotYours, load_generation
from storage.generations import GenerationRow
from storage.rewrites import (
    NotRewritable,
    RewriteCapReached,
    fail_rewrite,
    finish_rewrite,
    record_replies,
    still_running,
)

log = logging.getLogger(__name__)

# How often a streaming rewrite asks whether it was stopped (its workspace erased).
ERASURE_CHECK_SECONDS = 1.0

UNCHANGED = "I couldn't rewrite email {step}, so it is unchanged."
# The writer's own messages speak of a whole sequence; a rewrite is one email.
WHY_NOT: dict[str, str] = {
    "timeout": "Claude took too long. Please try again.",
    "overloaded": "Claude is overloaded right now. Please try again in a minute or two.",
    "rate_limited": "ColdCopy is very busy right now. Please try again in a minute.",
    "misconfigured": MISCONFIGURED_MESSAGE,
    "unavailable": "Claude couldn't be reached just now. Please try again in a minute.",
    "stream_error": "Claude stopped partway through. Please try again.",
    "invalid_output": "Claude's answer didn't come out as a complete email. Please try again.",
}


class ThreadRewriter:
    """Runs rewrites asked for in a sequence's thread, with the workspace's own client."""

    def __init__(self, services: Services, rewrites: Rewrites):
        self.services = services
        self.rewrites = rewrites
        self.writer = services.writer
        self.engine = services.engine

    def rewrite(self, client: WebClient, request: RewriteRequest) -> None:
        gen = load_generation(
            self.engine,
            request.generation_id,
            team_id=request.team_id,
            user_id=request.user_id,
            act=Act.REWRITE,
            is_admin=lambda: self.services.people.is_admin(
                client, request.team_id, request.user_id
            ),
        )
        if isinstance(gen, NotYours):
            self._tell_in(client, gen.channel_id, gen.thread_ts, request, not_yours(gen))
            return
        if gen is None or not gen.posted_channel_id:
            self._tell(client, gen, request, "That sequence is no longer available.")
            return
        if request.quick is not None:
            change = quick_change(request.quick, gen, request.step)
            if change is None:
                return  # not a choice the menu offers
            request = replace(request, change=change)
        outcome = self.rewrites.admit(
            team_id=request.team_id,
            user_id=request.user_id,
            generation_id=gen.id,
            step=request.step,
            change=request.change,
        )
        if isinstance(outcome, RateLimited):
            unit = "minute" if outcome.minutes == 1 else "minutes"
            wait = f"You're rewriting fast! Try again in {outcome.minutes} {unit}."
            self._tell(client, gen, request, wait)
            return
        if isinstance(outcome, RewriteCapReached):
            self._tell(
                client,
                gen,
                request,
                f"This sequence has had its {outcome.cap} rewrites. Regenerate it for a fresh "
                "start, or edit the email by hand.",
            )
            return
        if isinstance(outcome, NotRewritable):
            self._tell(client, gen, request, outcome.reason)
            return
        self._run(client, gen, request, outcome.rewrite_id)

    def _run(
        self, client: WebClient, gen: GenerationRow, request: RewriteRequest, rewrite_id: str
    ) -> None:
        channel, thread_ts = gen.posted_channel_id, gen.parent_ts
        current = gen.sequence[request.step - 1]
        budget = self.services.budget
        live = LiveReply(
            client,
            budget,
            channel=channel,
            thread_ts=thread_ts,
            user_id=request.user_id,
            team_id=request.team_id,
        )
        heading = rewrite_heading(request.step)
        rewritten: SequenceEmail | None = None
        summary: WriterSummary | None = None
        try:
            brief = Brief(**(gen.brief or {}))
            sequence = [SequenceEmail.from_dict(email) for email in gen.sequence]
            checked = time.monotonic()
            for item in self.writer.rewrite_email(brief, sequence, request.step, request.change):
                if time.monotonic() - checked >= ERASURE_CHECK_SECONDS:
                    checked = time.monotonic()
                    if not still_running(self.engine, rewrite_id):
                        # Its workspace was erased: close the preview now; nothing more is said.
                        live.remove()
                        return
                if isinstance(item, BodyDelta):
                    live.add(heading + escape_markdown(item.text), urgent=bool(heading))
                    heading = ""
                elif isinstance(item, SequenceEmail):
                    rewritten = item
                elif isinstance(item, WriterSummary):
                    summary = item
            if rewritten is None or summary is None:
                raise WriterError("invalid_output", "the rewrite ended without an email")
        except WriterError as exc:
            why = WHY_NOT.get(exc.kind, exc.user_message)
            self._failed(client, gen, request, rewrite_id, live, exc.kind, why, exc)
            return
        except Exception:
            log.exception("rewrite crashed", extra={"generation_id": gen.id})
            self._failed(client, gen, request, rewrite_id, live, "internal_error", "", None)
            return
        latest = finish_rewrite(
            self.engine, rewrite_id, rewritten.as_dict(), model=summary.model, tokens=summary.tokens
        )
        if latest is None:
            # The workspace was erased meanwhile: close the preview, write and post nothing.
            live.remove()
            log.info("rewrite stopped: its workspace was erased", extra={"generation_id": gen.id})
            return
        message = email_message(request.step, rewritten, gen.id, edited_by=request.user_id)
        reply_ts = current.get("ts")
        updated = reply_ts is not None and update_message(
            client, budget, channel, reply_ts, message, request.team_id
        )
        # The preview goes once the email says the new words (or is posted anew below it).
        live.remove()
        if not updated:
            ts = post_reply(client, budget, channel, thread_ts, message, request.team_id)
            if ts != latest.get("ts"):
                record_replies(self.engine, gen.id, {request.step: ts})

    def _failed(
        self,
        client: WebClient,
        gen: GenerationRow,
        request: RewriteRequest,
        rewrite_id: str,
        live: LiveReply,
        kind: str,
        detail: str,
        error: WriterError | None,
    ) -> None:
        usage = error.usage if error is not None else None
        failed = fail_rewrite(
            self.engine,
            rewrite_id,
            kind,
            model=usage.model if usage else None,
            tokens=usage.tokens if usage else None,
        )
        live.remove()
        if not failed:
            return  # stopped by an erasure of its workspace: no notice
        text = UNCHANGED.format(step=request.step)
        self._tell(client, gen, request, f"{text} {detail}".strip())

    def _tell(
        self, client: WebClient, gen: GenerationRow | None, request: RewriteRequest, text: str
    ) -> None:
        """Only the person who asked sees the answer, in the sequence's thread."""
        where = (gen.posted_channel_id, gen.parent_ts) if gen is not None else (None, None)
        self._tell_in(client, *where, request, text)

    def _tell_in(
        self,
        client: WebClient,
        channel_id: str | None,
        thread_ts: str | None,
        request: RewriteRequest,
        text: str,
    ) -> None:
        if not channel_id:
            log.info("rewrite refused with no thread to answer in: %s", text)
            return
        try:
            client.chat_postEphemeral(
                channel=channel_id, user=request.user_id, thread_ts=thread_ts, text=text
            )
        except SlackApiError as exc:
            count_slack_error("chat.postEphemeral", exc)
