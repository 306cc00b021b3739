"""One threaded reply whose text streams in as it is written (Slack's chat.startStream,
appendStream and stopStream, through slack_sdk's `chat_stream`), and the finished message that
replaces it: updated in place, or posted (and the partial stream removed) so it shows once."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

from bot.core.metrics import count_slack_error, slack_error
from bot.slack import constants as K
from bot.slack.block_kit import Message

log = logging.getLogger(__name__)


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
