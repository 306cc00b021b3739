"""Posting one generation's thread: the parent message, a reply per email streamed in while the
model writes it (then turned into the formatted email), a progress line kept current, and the
ending (finished, incomplete or failed).

When the chosen conversation refuses the app, the thread goes to the user's DM with a note
saying why: nothing the user asked for is silently dropped. When Slack refuses or breaks a
stream, the finished email is posted (or the streamed message updated) instead: no text is
lost and none is posted twice.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.metrics import count_slack_error, slack_error
from bot.slack import constants as K
from bot.slack.block_kit import Message
from bot.slack.blocks import (
    Progress,
    delivery_note,
    email_message,
    failure_message,
    parent_message,
    stream_heading,
)
from bot.slack.live_reply import (
    STREAMING_UNAVAILABLE,
    LiveReply,
    deliver_reply,
    remove_message,
    stream_client,
)
from bot.writing.brief import Brief
from bot.writing.events import BodyDelta

log = logging.getLogger(__name__)

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
        *,
        generation_id: str,
        brief: Brief,
        user_id: str,
        channel_id: str,
        team_id: str | None = None,
    ):
        self.client = client
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
        self._stream_client = stream_client(client)
        self._live: dict[int, LiveReply] = {}
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
        """Post the parent message, joining or falling back to a DM when the channel refuses."""
        progress = progress or Progress()
        message = self._parent(progress)
        try:
            self._post_parent(self.requested_channel, message)
            return
        except SlackApiError as exc:
            error = slack_error(exc)
            count_slack_error("chat.postMessage", exc)
            if error not in K.UNPOSTABLE_ERRORS:
                raise
        if error == "not_in_channel" and self._join(self.requested_channel):
            try:
                self._post_parent(self.requested_channel, message)
                return
            except SlackApiError as exc:
                count_slack_error("chat.postMessage", exc)
                error = slack_error(exc)
        self._open_in_dm(error, progress)

    def retract(self) -> None:
        """Remove the parent message this process posted: another one opened the thread."""
        if self.ts is not None:
            remove_message(self.client, self.channel, self.ts)

    def _post_parent(self, channel: str, message: Message) -> None:
        response = self.client.chat_postMessage(
            channel=channel, text=message.text, blocks=message.blocks, unfurl_links=False
        )
        self.channel = response["channel"]
        self.ts = response["ts"]

    def _join(self, channel: str) -> bool:
        try:
            self.client.conversations_join(channel=channel)
            return True
        except SlackApiError as exc:
            count_slack_error("conversations.join", exc)
            return False

    def _open_in_dm(self, error: str, progress: Progress) -> None:
        reason = REFUSAL_REASONS.get(error, error.replace("_", " "))
        self.note = delivery_note(self.requested_channel, reason)
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

    def _update_parent(self, progress: Progress) -> None:
        message = self._parent(progress)
        try:
            self.client.chat_update(
                channel=self.channel, ts=self.ts, text=message.text, blocks=message.blocks
            )
        except SlackApiError as exc:
            # A stale progress line is cosmetic; the emails themselves are what matter.
            count_slack_error("chat.update", exc)
            log.warning(
                "could not update the parent message",
                extra={"generation_id": self.generation_id, "slack_error": slack_error(exc)},
            )

    # -- the replies -----------------------------------------------------------------------

    def started(self, *, recovered: bool) -> None:
        """The model is writing now (again, after a takeover, when `recovered`)."""
        self.recovered = recovered
        self._update_parent(Progress(posted=self.posted))

    def waiting(self) -> None:
        """Back in the queue for a moment (the model asked us to slow down)."""
        self._update_parent(Progress(posted=self.posted, queued_ahead=0))

    def draft(self, delta: BodyDelta) -> None:
        """Body text of an email still being written: stream it into the email's reply."""
        if self._streaming_off or delta.step <= self.posted:
            return
        live = self._live.get(delta.step)
        if live is None:
            live = self._live[delta.step] = LiveReply(
                self._stream_client,
                channel=self.channel,
                thread_ts=self.ts,
                user_id=self.user_id,
                team_id=self.team_id,
                heading=stream_heading(delta.step, delta.day, delta.subject_a, delta.subject_b),
            )
        live.add(delta.text)
        if live.broken in STREAMING_UNAVAILABLE:
            self._streaming_off = live.broken
            log.warning(
                "streaming is off for this thread: %s",
                live.broken,
                extra={"generation_id": self.generation_id},
            )

    def add_email(self, step: int, email) -> str:
        """The finished email: its streamed reply becomes the formatted email, or it is posted.
        Returns the reply's message ts."""
        message = email_message(step, email, self.generation_id)
        live = self._live.pop(step, None)
        if live is not None:
            live.stop()
        ts = deliver_reply(
            self.client, self.channel, self.ts, message, streamed_ts=live.ts if live else None
        )
        self.posted = step
        self._update_parent(Progress(posted=step))
        return ts

    def streaming_ts(self, step: int) -> str | None:
        """The ts of the reply `step` is streaming into, once Slack has made it."""
        live = self._live.get(step)
        return live.ts if live is not None else None

    def settle_reply(self, email, stream_ts: str) -> str:
        """Finish an email a stopped process had written but not yet turned from its stream
        into the formatted reply; returns the reply's ts."""
        self._stop_stream(stream_ts)
        message = email_message(email.step, email, self.generation_id)
        return deliver_reply(self.client, self.channel, self.ts, message, streamed_ts=stream_ts)

    def discard_reply(self, stream_ts: str) -> None:
        """Remove the partial reply a stopped process was streaming: the email is written
        again, whole."""
        self._stop_stream(stream_ts)
        remove_message(self.client, self.channel, stream_ts)

    def _stop_stream(self, ts: str) -> None:
        # A stream its process left open: closed first, so it can be updated or removed.
        try:
            self._stream_client.chat_stopStream(channel=self.channel, ts=ts)
        except SlackApiError as exc:
            count_slack_error("chat.stopStream", exc)  # already stopped, or timed out

    def abandon(self) -> None:
        """Another process writes the rest: remove the replies still streaming here, which it
        will post whole."""
        for live in self._live.values():
            live.stop()
            if live.ts:
                remove_message(self.client, self.channel, live.ts)
        self._live.clear()

    def finish(self, used: int, limit: int) -> None:
        self._update_parent(Progress(posted=self.posted, finished=True, used=used, limit=limit))

    def fail(self, user_message: str) -> None:
        """Tell the user in the thread, with a Try again button; open the thread if needed."""
        for live in self._live.values():
            # The email being written stays as far as it got, marked as cut off.
            live.stop(closing_text="\n\n_…cut off here._")
        self._live.clear()
        if self.ts is None:
            self.open()
        message = failure_message(user_message, self.generation_id)
        self.client.chat_postMessage(
            channel=self.channel, thread_ts=self.ts, text=message.text, blocks=message.blocks
        )
        self._update_parent(Progress(posted=self.posted, failed=True))
