"""What ColdCopy needs to know about a person: whether they are an admin or owner (who may
see a workspace's whole usage and change its settings) and their Slack locale (the language
their form offers first). Asked of users.info once and remembered for a few minutes, so
`/coldcopy status`, the form and the Home tab stay quick."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from cachetools import TTLCache
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.metrics import count_slack_error
from bot.writing.brief import language_from_locale

ADMIN_CACHE_SECONDS = 300


@dataclass(frozen=True)
class Person:
    is_admin: bool
    locale: str | None
    tz: str | None = None  # the IANA zone of the person's Slack clock


# Unknown means member: never show the whole workspace's figures by mistake.
UNKNOWN = Person(is_admin=False, locale=None)


class AdminDirectory:
    def __init__(self, ttl: float = ADMIN_CACHE_SECONDS, size: int = 10_000):
        self._cache: TTLCache = TTLCache(maxsize=size, ttl=ttl)
        self._lock = threading.Lock()

    def person(self, client: WebClient, team_id: str, user_id: str) -> Person:
        cached = self.remembered(team_id, user_id)
        if cached is not None:
            return cached
        try:
            user = client.users_info(user=user_id, include_locale=True)["user"]
        except SlackApiError as exc:
            count_slack_error("users.info", exc)
            return UNKNOWN
        return self._remember(team_id, user_id, user)

    async def person_async(self, client: AsyncWebClient, team_id: str, user_id: str) -> Person:
        """`person`, asked with an asynchronous client (many lookups in flight at once)."""
        cached = self.remembered(team_id, user_id)
        if cached is not None:
            return cached
        try:
            user = (await client.users_info(user=user_id, include_locale=True))["user"]
        except SlackApiError as exc:
            count_slack_error("users.info", exc)
            return UNKNOWN
        return self._remember(team_id, user_id, user)

    def remembered(self, team_id: str, user_id: str) -> Person | None:
        """What users.info said of the person within the last few minutes, if it was asked."""
        with self._lock:
            return self._cache.get((team_id, user_id))

    def _remember(self, team_id: str, user_id: str, user: dict) -> Person:
        person = Person(
            is_admin=bool(
                user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner")
            ),
            locale=user.get("locale"),
            tz=user.get("tz"),
        )
        with self._lock:
            self._cache[(team_id, user_id)] = person
        return person

    def is_admin(self, client: WebClient, team_id: str, user_id: str) -> bool:
        return self.person(client, team_id, user_id).is_admin

    def language(self, client: WebClient, team_id: str, user_id: str) -> str | None:
        """The ColdCopy language of the person's Slack locale, if it is one we write in."""
        return language_from_locale(self.person(client, team_id, user_id).locale)
