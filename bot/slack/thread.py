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
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

from bot.runtime.metrics import count_slack_error, slack_error
from bot.slack import constants as K
from bot.slack.blocks import (
    Message,
    Progress,
    delivery_note,
    email_message,
    failure_message,
    parent_message,
    stream_heading,
)
from bot.writing.brief import Brief
from bot.writing.writer import BodyDelta

log = logging.getLogger(__name__)

REFUSAL_REASONS = {
    "not_in_channel": "I'm not a member of that channel",
    "channel_not_found": "I can't see that conversation; it may be private",
    "is_archived": "that channel is archived",
    "missing_scope": "I'm not allowed to post there",
}


# chat.appendStream is rate limited per workspace (Tier 4): the first words go out at once,
# then one append per interval carries whatever the model wrote meanwhile.
STREAM_APPEND_INTERVAL = 1.0
# Answers meaning streaming will not work in this thread at all; other errors (a rate limit,
# a stream Slack closed after its time limit) end only the one stream they happened on.
STREAMING_UNAVAILABLE = frozenset(
    {
        "unknown_method",
        "not_allowed_token_type",
        "missing_scope",
        "not_in_channel",
        "channel_not_found",
        "invalid_arguments",
        "feature_not_enabled",
        "team_not_allowed",
    }
)


def stream_client(client: WebClient) -> WebClient:
    """The same token and API, without waiting out rate limits: a stream that is rate limited
    stops streaming and its email is delivered whole instead of the writer waiting on Slack."""
    return WebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)],
    )


class LiveReply:
    """One threaded reply streamed with chat.startStream / appendStream / stopStream (through
    slack_sdk's `chat_stream`), appends spaced out by `interval`. A refusal or a broken stream
    is recorded in `broken`, never raised: the caller delivers the finished text instead."""

    def __init__(
        self,
        client: WebClient,
        *,
        channel: str,
        thread_ts: str,
        user_id: str,
        team_id: str | None,
        heading: str,
        interval: float = STREAM_APPEND_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ):
        # buffer_size=1: every append call is sent; the spacing is decided here, by time.
        self._stream = client.chat_stream(
            channel=channel,
            thread_ts=thread_ts,
            recipient_user_id=user_id,
            recipient_team_id=team_id,
            buffer_size=1,
        )
        self._pending = heading
        self._interval = interval
        self._clock = clock
        self._last_sent: float | None = None
        self.broken: str | None = None
        self.stopped = False

    @property
    def ts(self) -> str | None:
        """The streamed message, once Slack has started it."""
        return self._stream.ts

    def add(self, text: str) -> None:
        if self.broken or self.stopped:
            return
        self._pending += text
        now = self._clock()
        if self._last_sent is None or now - self._last_sent >= self._interval:
            self._send(now)

    def _send(self, now: float) -> None:
        text, self._pending = self._pending[: K.MAX_STREAM_TEXT], self._pending[K.MAX_STREAM_TEXT :]
        method = "chat.appendStream" if self.ts else "chat.startStream"
        try:
            self._stream.append(markdown_text=text)
        except SlackApiError as exc:
            count_slack_error(method, exc)
            self.broken = slack_error(exc)
            log.info("stream broke off (%s): %s", method, self.broken)
            return
        self._last_sent = now

    def stop(self, closing_text: str | None = None) -> None:
        """End the stream if it started; Slack may already have ended it (its time limit).

        Text not sent yet is dropped unless `closing_text` is given: a finished email replaces
        the whole message anyway, while a cut-off one keeps every word written, then the note.
        """
        if self.stopped or self.ts is None:
            self.stopped = True
            return
        self.stopped = True
        if closing_text is not None:
            closing_text = (self._pending + closing_text)[-K.MAX_STREAM_TEXT :]
        try:
            self._stream.stop(markdown_text=closing_text)
        except SlackApiError as exc:
            count_slack_error("chat.stopStream", exc)
            log.info("stream could not be stopped: %s", slack_error(exc))


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


def deliver_reply(
    client: WebClient, channel: str, thread_ts: str, message: Message, *, streamed_ts: str | None
) -> str:
    """Put a finished message in the thread and return its ts: the streamed message becomes it
    (chat.update) when there is one, else it is posted. If the streamed message cannot be
    updated, the message is posted and the partial stream removed, so it shows once."""
    if streamed_ts is not None:
        try:
            client.chat_update(
                channel=channel, ts=streamed_ts, text=message.text, blocks=message.blocks
            )
            return streamed_ts
        except SlackApiError as exc:
            count_slack_error("chat.update", exc)
            log.warning("could not finish a streamed reply: %s", slack_error(exc))
    response = client.chat_postMessage(
        channel=channel,
        thread_ts=thread_ts,
        text=message.text,
        blocks=message.blocks,
        unfurl_links=False,
    )
    if streamed_ts is not None:
        remove_message(client, channel, streamed_ts)
    return response["ts"]


def remove_message(client: WebClient, channel: str, ts: str) -> None:
    try:
        client.chat_delete(channel=channel, ts=ts)
    except SlackApiError as exc:
        count_slack_error("chat.delete", exc)
        log.warning("could not remove a message: %s", slack_error(exc))
