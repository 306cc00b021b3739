"""Posting one generation's thread: the parent message with a progress line kept current, one
live draft reply that shows each email's words as the model writes them, each finished email
posted as its own formatted reply, and the ending (finished or failed).

Slack limits each method per workspace (streams are Tier 2: about 20 a minute), so a sequence
streams into ONE draft reply rather than one per email, every call takes its slot in the
workspace's shared budget, and what is optional (the draft, progress lines) gives way when the
budget is spent while what is essential (emails, the finished parent) waits for its turn. The
draft is removed once the emails are in the thread: no partial reply is left beside a finished
one.

The app joins a public channel before it opens a thread there (files, streams and mentions need
membership); when the chosen conversation refuses the app, the thread goes to the user's DM
with a note saying why: nothing the user asked for is silently dropped.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.metrics import count_slack_error, slack_error
from bot.slack import constants as K
from bot.slack.block_kit import Message, escape_markdown
from bot.slack.blocks import (
    Progress,
    delivery_note,
    email_message,
    failure_message,
    join_note,
    parent_message,
    stream_heading,
)
from bot.slack.budget import SlackBudget
from bot.slack.live_reply import (
    ESSENTIAL_WAIT_SECONDS,
    STREAMING_UNAVAILABLE,
    LiveReply,
    post_reply,
    remove_message,
    stream_client,
    update_message,
)
from bot.slack.membership import Memberships
from bot.writing.brief import Brief
from bot.writing.events import BodyDelta

log = logging.getLogger(__name__)

# How much of a new email's body makes its "first words", sent to the draft at once.
FIRST_WORDS_CHARACTERS = 24

REFUSAL_REASONS = {
    "not_in_channel": "I'm not a member of that channel",
    "channel_not_found": "I can't see that conversation; it may be private",
    "is_archived": "that channel is archived",
    "missing_scope": "I'm not allowed to post there",
}


class SequenceThread:
    """The Slack side of one generation."""

    def __init__(
        self,
        client: WebClient,
        budget: SlackBudget,
        memberships: Memberships,
        *,
        generation_id: str,
        brief: Brief,
        user_id: str,
        channel_id: str,
        team_id: str | None = None,
    ):
        self.client = client
        self.budget = budget
        self.memberships = memberships
        self.generation_id = generation_id
        self.brief = brief
        self.user_id = user_id
        self.team_id = team_id
        self.requested_channel = channel_id
        self.channel: str | None = None
        self.ts: str | None = None
        self.posted = 0
        self.note: str | None = None
        self.recovered = False
        self._draft: LiveReply | None = None
        self._drafting = 0  # the email the draft is showing
        self._first_words: str | None = None  # its body's start, until it is sent at once
        self._streaming_off: str | None = None

    # -- the parent ------------------------------------------------------------------------

    def attach(self, channel: str, ts: str, *, posted: int = 0) -> None:
        """Continue a thread whose parent was posted earlier (by the announcer, or by a process
        that stopped): `posted` emails are already in it."""
        self.channel, self.ts, self.posted = channel, ts, posted
        if channel != self.requested_channel:
            # The parent went to a DM when the channel refused it; keep saying why.
            self.note = delivery_note(self.requested_channel, "that conversation refused the app")

    def open(self, progress: Progress | None = None) -> None:
        """Post the parent message: in a public channel, after joining it; in the user's DM
        when the conversation refuses the app."""
        progress = progress or Progress()
        refused_join = self.memberships.join(
            self.client, self.budget, self.team_id, self.requested_channel
        )
        if refused_join is not None:
            # Posting may still work (chat:write.public); say once what will not.
            self.note = join_note(self.requested_channel, refused_join)
            self._streaming_off = "not_in_channel"
        message = self._parent(progress)
        try:
            self._post_parent(self.requested_channel, message)
            return
        except SlackApiError as exc:
            error = slack_error(exc)
            count_slack_error("chat.postMessage", exc)
            if error not in K.UNPOSTABLE_ERRORS:
                raise
        self._open_in_dm(error, progress)

    def retract(self) -> None:
        """Remove the parent message this process posted: another one opened the thread."""
        if self.ts is not None:
            remove_message(self.client, self.budget, self.channel, self.ts, self.team_id)

    def _post_parent(self, channel: str, message: Message) -> None:
        self.budget.wait("chat.postMessage", self.team_id, channel, up_to=ESSENTIAL_WAIT_SECONDS)
        response = self.client.chat_postMessage(
            channel=channel, text=message.text, blocks=message.blocks, unfurl_links=False
        )
        self.channel = response["channel"]
        self.ts = response["ts"]

    def _open_in_dm(self, error: str, progress: Progress) -> None:
        reason = REFUSAL_REASONS.get(error, error.replace("_", " "))
        self.note = delivery_note(self.requested_channel, reason)
        self._streaming_off = None  # a DM needs no joining
        message = self._parent(progress)  # now with the note saying why it is a DM
        dm = self.client.conversations_open(users=self.user_id)["channel"]["id"]
        self._post_parent(dm, message)
        log.info(
            "thread delivered by DM",
            extra={"generation_id": self.generation_id, "slack_error": error},
        )
        try:
            self.client.chat_postEphemeral(
                channel=self.requested_channel,
                user=self.user_id,
                text=f"{self.note} Open your DM with ColdCopy to read it.",
            )
        except SlackApiError as exc:
            # The channel refused our message, so it may refuse the ephemeral note too;
            # the DM itself carries the same explanation.
            count_slack_error("chat.postEphemeral", exc)

    def _parent(self, progress: Progress) -> Message:
        progress = Progress(
            posted=progress.posted,
            finished=progress.finished,
            failed=progress.failed,
            used=progress.used,
            limit=progress.limit,
            note=self.note,
            queued_ahead=progress.queued_ahead,
            recovered=self.recovered and not progress.finished,
        )
        return parent_message(self.brief, self.user_id, progress, self.generation_id)

    def _update_parent(self, progress: Progress, *, essential: bool = False) -> None:
        """A progress line is skipped when the workspace's budget is spent (the next one, or
        the ending, says more); the ending waits for its turn."""
        update_message(
            self.client,
            self.budget,
            self.channel,
            self.ts,
            self._parent(progress),
            self.team_id,
            essential=essential,
        )

    # -- the replies -----------------------------------------------------------------------

    def started(self, *, recovered: bool) -> None:
        """The model is writing now (again, after a takeover, when `recovered`)."""
        self.recovered = recovered
        self._update_parent(Progress(posted=self.posted))

    def waiting(self) -> None:
        """Back in the queue for a moment (the model asked us to slow down)."""
        self._update_parent(Progress(posted=self.posted, queued_ahead=0), essential=True)

    def draft(self, delta: BodyDelta) -> None:
        """Body text of an email still being written: shown in the draft reply, its first
        words at once."""
        if self._streaming_off or delta.step <= self.posted:
            return
        if self._draft is None:
            self._draft = LiveReply(
                self.client,
                self.budget,
                channel=self.channel,
                thread_ts=self.ts,
                user_id=self.user_id,
                team_id=self.team_id,
            )
        text = escape_markdown(delta.text)
        if delta.step != self._drafting:
            self._drafting, self._first_words = delta.step, ""
            rule = "\n\n---\n\n" if self._draft.ts else ""
            heading = stream_heading(delta.step, delta.day, delta.subject_a, delta.subject_b)
            text = rule + heading + text
        urgent = False
        if self._first_words is not None:
            # A new email's first words go out at once, not at the next second.
            self._first_words += delta.text
            urgent = len(self._first_words) >= FIRST_WORDS_CHARACTERS
        if self._draft.add(text, urgent=urgent) and urgent:
            self._first_words = None
        if self._draft.broken in STREAMING_UNAVAILABLE:
            self._streaming_off = self._draft.broken
            if self._draft.broken == "not_in_channel":
                self.memberships.left(self.team_id, self.channel)
            log.warning(
                "streaming is off for this thread: %s",
                self._draft.broken,
                extra={"generation_id": self.generation_id},
            )

    def add_email(self, step: int, email) -> str:
        """The finished email, posted as its own reply (in the channel's turn); its ts."""
        message = email_message(step, email, self.generation_id)
        ts = post_reply(self.client, self.budget, self.channel, self.ts, message, self.team_id)
        self.posted = step
        self._update_parent(Progress(posted=step))
        return ts

    def draft_ts(self) -> str | None:
        """The draft reply, once Slack has made it (a takeover removes it)."""
        return self._draft.ts if self._draft is not None else None

    def discard_reply(self, stream_ts: str) -> None:
        """Remove the draft a stopped process was streaming into: the rest is written again."""
        try:
            stream_client(self.client).chat_stopStream(channel=self.channel, ts=stream_ts)
        except SlackApiError as exc:
            count_slack_error("chat.stopStream", exc)  # already stopped, or timed out
        remove_message(self.client, self.budget, self.channel, stream_ts, self.team_id)

    def abandon(self) -> None:
        """This process stops here (taken over, handed back): its draft goes; whoever goes on
        starts its own."""
        self._remove_draft()

    def close_draft(self) -> None:
        """Every email is in the thread: the draft that showed them being written goes."""
        self._remove_draft()

    def finish(self, used: int, limit: int) -> None:
        self._remove_draft()
        progress = Progress(posted=self.posted, finished=True, used=used, limit=limit)
        self._update_parent(progress, essential=True)

    def fail(self, user_message: str) -> None:
        """Tell the user in the thread, with a Try again button; open the thread if needed."""
        self._remove_draft()
        if self.ts is None:
            self.open()
        message = failure_message(user_message, self.generation_id)
        post_reply(self.client, self.budget, self.channel, self.ts, message, self.team_id)
        self._update_parent(Progress(posted=self.posted, failed=True), essential=True)

    def _remove_draft(self) -> None:
        if self._draft is not None:
            self._draft.remove()
            self._draft = None
