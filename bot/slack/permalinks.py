"""Links to the threads ColdCopy posted, asked of chat.getPermalink once each: a message's
permalink never changes, so the App Home does not ask again on every refresh."""

from __future__ import annotations

import threading

from cachetools import LRUCache
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core.metrics import count_slack_error


class Permalinks:
    def __init__(self, size: int = 10_000):
        self._cache: LRUCache = LRUCache(maxsize=size)
        self._lock = threading.Lock()

    def link(self, client: WebClient, team_id: str, channel_id: str, ts: str) -> str | None:
        """The message's permalink; None when Slack gives none (deleted, no access)."""
        key = (team_id, channel_id, ts)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        try:
            link = client.chat_getPermalink(channel=channel_id, message_ts=ts)["permalink"]
        except SlackApiError as exc:
            count_slack_error("chat.getPermalink", exc)
            return None
        with self._lock:
            self._cache[key] = link
        return link
