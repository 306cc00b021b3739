"""A threaded reply whose text streams in while the model writes it (Slack's chat.startStream,
appendStream and stopStream, through slack_sdk's `chat_stream`), within the workspace's shared
budget of those calls (bot/slack/budget.py), and the helpers that put a finished message in a
thread or take one out.

A stream is a preview: when Slack refuses it, breaks it, or the budget is spent, it just stops
growing (`broken` says why) and the finished text is delivered as an ordinary message.
"""

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
from bot.slack.budget import SlackBudget

log = logging.getLogger(__name__)

# After the first words of each email (sent at once), appends carry whatever was written since,
# at most once per interval (chat.appendStream is Tier 4, shared by the workspace).
STREAM_APPEND_INTERVAL = 1.0
# How long an essential call (stopping a stream, an email, the finished parent) waits for the
# workspace's budget before it goes out anyway.
ESSENTIAL_WAIT_SECONDS = 30.0
# Answers meaning streaming will not work in this conversation at all (the errors of
# chat.startStream and chat.appendStream on docs.slack.dev); others (a rate limit, a stream
# Slack closed after its time limit) end only the one stream they happened on.
STREAMING_UNAVAILABLE = frozenset(
    {
        "unknown_method",
        "not_allowed_token_type",
        "missing_scope",
        "not_in_channel",
        "channel_not_found",
        "channel_type_not_supported",
        "is_archived",
        "invalid_arguments",
        "missing_recipient_user_id",
        "missing_recipient_team_id",
        "messages_tab_disabled",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "ekm_access_denied",
        "feature_not_enabled",
        "team_not_allowed",
    }
)
# The person watching pressed stop: nothing more goes into that message.
STOPPED_BY_USER = "stopped_by_user"
# Not a Slack error: the workspace's share of a streaming method was spent.
BUDGET_SPENT = "budget_spent"


def stream_client(client: WebClient) -> WebClient:
    """The same token and API, without waiting out rate limits: a stream that is rate limited
    stops growing instead of the writer waiting on Slack."""
    return WebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)],
    )


class LiveReply:
    """One streamed reply. `add` text as it is written (`urgent` for words that should show at
    once, like the start of a new email); every call takes its slot in the workspace's budget
    first. Failures are recorded in `broken`, never raised."""

    def __init__(
        self,
        client: WebClient,
        budget: SlackBudget,
        *,
        channel: str,
        thread_ts: str,
        user_id: str,
        team_id: str | None,
        interval: float = STREAM_APPEND_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._client = stream_client(client)
        self._budget = budget
        self._channel = channel
        self._team_id = team_id
        # buffer_size=1: every append call is sent; the spacing is decided here, by time.
        self._stream = self._client.chat_stream(
            channel=channel,
            thread_ts=thread_ts,
            recipient_user_id=user_id,
            recipient_team_id=team_id,
            buffer_size=1,
        )
        self._pending = ""
        self._interval = interval
        self._clock = clock
        self._last_sent: float | None = None
        self.broken: str | None = None
        self.stopped = False

    @property
    def ts(self) -> str | None:
        """The streamed message, once Slack has started it."""
        return self._stream.ts

    def add(self, text: str, *, urgent: bool = False) -> bool:
        """Add text; True when it (with whatever waited) went to Slack now."""
        if self.broken or self.stopped:
            return False
        self._pending += text
        now = self._clock()
        due = self._last_sent is None or now - self._last_sent >= self._interval
        if (urgent or due) and self._pending:
            return self._send(now)
        return False

    def _send(self, now: float) -> bool:
        method = "chat.appendStream" if self.ts else "chat.startStream"
        if not self._budget.spend(method, self._team_id):
            if self.ts is None:
                self.broken = BUDGET_SPENT  # no preview for this one; the text arrives whole
            return False  # appends: the text waits for the next slot
        text, self._pending = self._pending[: K.MAX_STREAM_TEXT], self._pending[K.MAX_STREAM_TEXT :]
        try:
            self._stream.append(markdown_text=text)
        except SlackApiError as exc:
            count_slack_error(method, exc)
            self.broken = slack_error(exc)
            log.info("stream broke off (%s): %s", method, self.broken)
            return False
        self._last_sent = now
        return True

    def stop(self, closing_text: str | None = None) -> None:
        """End the stream if it started and is still ours to end (Slack may already have ended
        it after its time limit, or the reader stopped it). `closing_text` is added at the end,
        after whatever was still waiting to be sent."""
        if self.stopped or self.ts is None or self.broken == STOPPED_BY_USER:
            self.stopped = True
            return
        self.stopped = True
        if closing_text is not None:
            closing_text = (self._pending + closing_text)[-K.MAX_STREAM_TEXT :]
        self._budget.wait("chat.stopStream", self._team_id, up_to=ESSENTIAL_WAIT_SECONDS)
        try:
            self._stream.stop(markdown_text=closing_text)
        except SlackApiError as exc:
            count_slack_error("chat.stopStream", exc)
            log.info("stream could not be stopped: %s", slack_error(exc))

    def remove(self) -> None:
        """Stop the stream and take the reply out of the thread (a preview whose text was
        delivered otherwise)."""
        self.stop()
        if self.ts is not None:
            remove_message(self._client, self._budget, self._channel, self.ts, self._team_id)


def post_reply(
    client: WebClient,
    budget: SlackBudget,
    channel: str,
    thread_ts: str,
    message: Message,
    team_id: str | None,
) -> str:
    """Post a finished message in the thread, in its turn of the channel's budget; its ts."""
    budget.wait("chat.postMessage", team_id, channel, up_to=ESSENTIAL_WAIT_SECONDS)
    response = client.chat_postMessage(
        channel=channel,
        thread_ts=thread_ts,
        text=message.text,
        blocks=message.blocks,
        unfurl_links=False,
    )
    return response["ts"]


def update_message(
    client: WebClient,
    budget: SlackBudget,
    channel: str,
    ts: str,
    message: Message,
    team_id: str | None,
    *,
    essential: bool = True,
) -> bool:
    """chat.update within the budget; a non-essential update (a progress line) is skipped
    when the budget is spent. False when it was skipped or refused."""
    if essential:
        budget.wait("chat.update", team_id, up_to=ESSENTIAL_WAIT_SECONDS)
    elif not budget.spend("chat.update", team_id):
        return False
    try:
        client.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks)
        return True
    except SlackApiError as exc:
        count_slack_error("chat.update", exc)
        log.warning("could not update a message: %s", slack_error(exc))
        return False


def remove_message(
    client: WebClient, budget: SlackBudget, channel: str, ts: str, team_id: str | None
) -> None:
    budget.wait("chat.delete", team_id, up_to=ESSENTIAL_WAIT_SECONDS)
    try:
        client.chat_delete(channel=channel, ts=ts)
    except SlackApiError as exc:
        count_slack_error("chat.delete", exc)
        log.warning("could not remove a message: %s", slack_error(exc))
