"""Posting one generation's thread: the parent message, a reply per email the moment it is
written, a progress line kept current, and the ending (finished, incomplete or failed).

When the chosen conversation refuses the app, the thread goes to the user's DM with a note
saying why: nothing the user asked for is silently dropped.
"""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.runtime.metrics import count_slack_error, slack_error
from bot.slack import constants as K
from bot.slack.blocks import (
    Message,
    Progress,
    delivery_note,
    email_message,
    failure_message,
    parent_message,
)
from bot.writing.brief import Brief

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
    ):
        self.client = client
        self.generation_id = generation_id
        self.brief = brief
        self.user_id = user_id
        self.requested_channel = channel_id
        self.channel: str | None = None
        self.ts: str | None = None
        self.posted = 0
        self.note: str | None = None
        self.recovered = False

    # -- the parent ------------------------------------------------------------------------

    def attach(self, channel: str, ts: str, *, posted: int = 0) -> None:
        """Continue a thread whose parent was posted earlier (on acceptance, or by a process
        that stopped): `posted` emails are already in it."""
        self.channel, self.ts, self.posted = channel, ts, posted

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

    def add_email(self, step: int, email) -> str:
        """Post one email as a reply; returns its message ts."""
        message = email_message(step, email)
        response = self.client.chat_postMessage(
            channel=self.channel,
            thread_ts=self.ts,
            text=message.text,
            blocks=message.blocks,
            unfurl_links=False,
        )
        self.posted = step
        self._update_parent(Progress(posted=step))
        return response["ts"]

    def finish(self, used: int, limit: int) -> None:
        self._update_parent(Progress(posted=self.posted, finished=True, used=used, limit=limit))

    def fail(self, user_message: str) -> None:
        """Tell the user in the thread, with a Try again button; open the thread if needed."""
        if self.ts is None:
            self.open()
        message = failure_message(user_message, self.generation_id)
        self.client.chat_postMessage(
            channel=self.channel, thread_ts=self.ts, text=message.text, blocks=message.blocks
        )
        self._update_parent(Progress(posted=self.posted, failed=True))
