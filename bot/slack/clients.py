"""Slack Web API clients: one per workspace, holding its bot token (looked up in the installation
store with its enterprise id, renewed first when the workspace rotates tokens), or the single
workspace's token. Every client rides out 429s, 5xx answers and dropped connections with
slack_sdk's own retry handlers."""

from __future__ import annotations

import threading

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.token_rotation import TokenRotator

from bot.core.settings import Settings
from bot.slack.installations import WorkspaceInstallationStore

SLACK_TIMEOUT_SECONDS = 10
# Renew a rotating bot token this long before it expires (Bolt's own default).
TOKEN_ROTATION_MINUTES = 120


def make_slack_client(settings: Settings, token: str | None = None) -> WebClient:
    """A Web API client on SLACK_API_URL that rides out 429s (honouring Retry-After), 5xx
    answers and dropped connections with slack_sdk's own retry handlers."""
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=SLACK_TIMEOUT_SECONDS,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


class NotInstalled(LookupError):
    """ColdCopy has no installation (or no bot token) for this workspace."""


class SlackClients:
    """The client for each workspace this process talks to, made once and kept while its token
    stays the same."""

    def __init__(self, settings: Settings, installations: WorkspaceInstallationStore | None):
        self.settings = settings
        self.installations = installations
        self._clients: dict[str, WebClient] = {}
        self._lock = threading.Lock()

    def client(self, team_id: str, enterprise_id: str | None = None) -> WebClient:
        """A client holding the bot token of `team_id` (or the single-workspace token)."""
        if self.installations is None:
            key, token = "single", self.settings.slack_bot_token
        else:
            bot = self.installations.find_bot(enterprise_id=enterprise_id, team_id=team_id)
            if bot is None:
                raise NotInstalled(f"ColdCopy is not installed in workspace {team_id}")
            key, token = team_id, self._fresh_bot_token(bot)
        with self._lock:
            client = self._clients.get(key)
            if client is None or client.token != token:
                client = make_slack_client(self.settings, token)
                self._clients[key] = client
            return client

    def _fresh_bot_token(self, bot: Bot) -> str:
        """The bot token, renewed first with slack_sdk's TokenRotator when the workspace uses
        token rotation and it is about to expire (work outside a request has no Bolt authorize
        step to do it)."""
        if not bot.bot_refresh_token or bot.bot_token_expires_at is None:
            return bot.bot_token
        rotator = TokenRotator(
            client_id=self.settings.slack_client_id,
            client_secret=self.settings.slack_client_secret,
            client=make_slack_client(self.settings),
        )
        renewed = rotator.perform_bot_token_rotation(
            bot=bot, minutes_before_expiration=TOKEN_ROTATION_MINUTES
        )
        if renewed is None:
            return bot.bot_token
        self.installations.save_bot(renewed)
        return renewed.bot_token

    def forget(self, team_id: str) -> None:
        with self._lock:
            self._clients.pop(team_id, None)
