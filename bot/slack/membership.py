"""Being in the conversations ColdCopy posts to. `chat:write.public` lets the app post in a public
channel it never joined, but Slack wants membership for what else a thread needs: sharing a file
(files.completeUploadExternal: "User/bot membership is required"), streaming (chat.startStream:
`not_in_channel`), and the app_mention events of "@ColdCopy make email 3 shorter" ("If your app
is mentioned but not part of a conversation ... you won't receive an event"). So the app joins a
public channel before it opens a thread there (it has `channels:join`); private channels and DMs
cannot be joined, and keep today's fallbacks.

Joins are remembered per process for a while, so a busy channel costs one call; a refusal is
remembered too, and said once, in the thread's parent message.
"""

from __future__ import annotations

import logging
import threading

from cachetools import TTLCache
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.metrics import count_slack_error, slack_error
from bot.slack.budget import SlackBudget

log = logging.getLogger(__name__)

JOINED_FOR_SECONDS = 3600
REFUSED_FOR_SECONDS = 600
# Answers of conversations.join meaning the app cannot join on its own (docs.slack.dev).
CANNOT_JOIN_REASONS = {
    "method_not_supported_for_channel_type": "it is private: invite @ColdCopy to it",
    "channel_not_found": "I can't see it; it may be private: invite @ColdCopy to it",
    "is_archived": "it is archived",
    "restricted_action": "the workspace doesn't let apps join channels",
    "missing_scope": "ColdCopy is not allowed to join channels in this workspace",
}


def joinable(channel_id: str) -> bool:
    """Only channels (C…) can be joined: DMs (D…), group DMs and legacy private groups (G…)
    cannot, and a user id (U…/W…) stands for the DM with that user."""
    return channel_id.startswith("C")


class Memberships:
    def __init__(self):
        self._joined: TTLCache = TTLCache(maxsize=50_000, ttl=JOINED_FOR_SECONDS)
        self._refused: TTLCache = TTLCache(maxsize=50_000, ttl=REFUSED_FOR_SECONDS)
        self._lock = threading.Lock()

    def join(
        self, client: WebClient, budget: SlackBudget, team_id: str | None, channel_id: str
    ) -> str | None:
        """Make the app a member of `channel_id` if it can be joined; None when it is a member
        (or needs none: a DM), else why it is not, in words (a refusal is remembered for a
        while, not asked again)."""
        if not joinable(channel_id):
            return None
        key = (team_id, channel_id)
        with self._lock:
            if key in self._joined:
                return None
            if key in self._refused:
                error = self._refused[key]
                return CANNOT_JOIN_REASONS.get(error, error.replace("_", " "))
        budget.wait("conversations.join", team_id, up_to=10)
        try:
            client.conversations_join(channel=channel_id)
        except SlackApiError as exc:
            error = slack_error(exc)
            count_slack_error("conversations.join", exc)
            log.info("could not join a channel: %s", error, extra={"team_id": team_id})
            with self._lock:
                self._refused[key] = error
            return CANNOT_JOIN_REASONS.get(error, error.replace("_", " "))
        with self._lock:
            self._joined[key] = True
        return None

    def member(self, team_id: str | None, channel_id: str) -> bool:
        """Known to be a member (joined here lately), or a conversation that needs no joining."""
        with self._lock:
            return not joinable(channel_id) or (team_id, channel_id) in self._joined

    def left(self, team_id: str | None, channel_id: str) -> None:
        """Slack said the app is not in the channel (removed since): join again next time."""
        with self._lock:
            self._joined.pop((team_id, channel_id), None)
            self._refused.pop((team_id, channel_id), None)
