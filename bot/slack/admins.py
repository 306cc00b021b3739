"""Who may see a workspace's whole usage: admins and owners, asked of users.info and
remembered for a few minutes so `/coldcopy status` stays quick."""

from __future__ import annotations

import threading

from cachetools import TTLCache
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.runtime.metrics import count_slack_error

ADMIN_CACHE_SECONDS = 300


class AdminDirectory:
    def __init__(self, ttl: float = ADMIN_CACHE_SECONDS, size: int = 10_000):
        self._cache: TTLCache = TTLCache(maxsize=size, ttl=ttl)
        self._lock = threading.Lock()

    def is_admin(self, client: WebClient, team_id: str, user_id: str) -> bool:
        key = (team_id, user_id)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        try:
            user = client.users_info(user=user_id)["user"]
        except SlackApiError as exc:
            # Unknown means member: never show the whole workspace's figures by mistake.
            count_slack_error("users.info", exc)
            return False
        admin = bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        with self._lock:
            self._cache[key] = admin
        return admin
